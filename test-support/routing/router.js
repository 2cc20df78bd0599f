'use strict'
// The router of the routed load proofs, a child process in the proxy
// namespace beside the proxy: a HandoverRouter over the repository's
// built-in adapter for the proxy (adapters/<kind>.js).
//
// argv: kind '<json>' where json = { adapterOptions, routerOptions }
// stdout, one JSON object per line: { event: 'started' | 'change' | 'error', at, … };
// a change carries the router's event (kind, address, timestamp, elapsedMs for
// 'drained': the instance's first DOWN heard → the proxy's confirmation).

const path = require('node:path')

const REPOSITORY = path.join(__dirname, '..', '..')
const [kind, json] = process.argv.slice(2)
const { adapterOptions, routerOptions } = JSON.parse(json)
const say = (event, details = {}) => process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...details })}\n`)

async function main() {
  const { HandoverRouter } = require(path.join(REPOSITORY, 'index.js'))
  const { adapterFor } = require(path.join(REPOSITORY, 'adapters', 'index.js'))
  const router = new HandoverRouter(adapterFor(kind, adapterOptions), { name: kind, logLevel: 'warning', ...routerOptions })
  router.on('change', (line, event) => say('change', { line, kind: event.kind, address: event.address, timestamp: event.timestamp, elapsedMs: event.elapsedMs }))
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
