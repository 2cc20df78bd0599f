'use strict'
// The router of the routed load proofs, a child process in the proxy
// namespace beside the proxy: a HandoverRouter over the repository's
// built-in adapter for the proxy (adapters/<kind>.js).
//
// argv: kind '<json>' where json = { adapterOptions, routerOptions }
// stdout, one JSON object per line: { event: 'started' | 'change' | 'error', at, … }

const path = require('node:path')

const REPOSITORY = path.join(__dirname, '..', '..')
const [kind, json] = process.argv.slice(2)
const { adapterOptions, routerOptions } = JSON.parse(json)
const say = (event, details = {}) => process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...details })}\n`)

/** The adapter class of adapters/<kind>.js, whatever name it is exported under. */
function adapterClass(kind) {
  const exported = require(path.join(REPOSITORY, 'adapters', `${kind}.js`))
  if (typeof exported === 'function') return exported
  const classes = Object.values(exported).filter((v) => typeof v === 'function' && /Adapter$/.test(v.name))
  if (classes.length !== 1) throw new Error(`adapters/${kind}.js exports ${Object.keys(exported).join(', ')}: which is the adapter?`)
  return classes[0]
}

async function main() {
  const { HandoverRouter } = require(path.join(REPOSITORY, 'index.js'))
  const Adapter = adapterClass(kind)
  const router = new HandoverRouter(new Adapter(adapterOptions), { name: kind, ...routerOptions })
  router.on('change', (line) => say('change', { line }))
  router.on('error', (error) => say('error', { message: error.message, code: error.code }))
  await router.start()
  say('started')
  process.on('SIGTERM', () => router.close().then(() => process.exit(0)))
}

main().catch((error) => {
  say('error', { message: error.stack, fatal: true })
  process.exit(1)
})

// The scenario is our parent: if it goes, so do we.
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
