'use strict'
// The processes of a router scenario, each run inside one namespace of a
// topology, driven over stdin/stdout with one JSON object per line:
//
//   node router-roles.js '{"role":"router","options":{…},"env":{…},"drainDelayMs":1500}'
//     A HandoverRouter with an in-process adapter that reports every table
//     handed to it ({"event":"apply","table",…}) and, just before it
//     confirms one, {"event":"confirmed","generation","at"}. A table with a
//     'drain' server, the first time its generation is applied, is
//     confirmed only after drainDelayMs: the proxy takes its time.
//     Commands: {"cmd":"stats"} → {"event":"stats",…router.stats()}.
//
//   node router-roles.js '{"role":"instance","startedAt":ms,"service","addresses":[…],"options":{…},"env":{…}}'
//     A HandoverStatus. Commands: {"cmd":"up"} → "up"; {"cmd":"drain","timeoutMs"}
//     → "draining", later {"event":"drained","report","at"}. Its log lines
//     come as {"event":"log","level","message"}.
//
//   node router-roles.js '{"role":"capture","interface":"10.0.0.66","ports":[1537,1538]}'
//     Raw sockets joined to the status group: every datagram heard comes as
//     {"event":"packet","port","from","hex"}. What anyone on the segment can see.
//
// Every role reports {"event":"ready",…} first and exits when stdin closes.

const path = require('node:path')
const readline = require('node:readline')

const REPOSITORY = path.join(__dirname, '..', '..', '..')
const GROUP = '239.192.16.16'

const config = JSON.parse(process.argv[2])
Object.assign(process.env, config.env || {})

const report = (event, extra = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// Keep stdout for reports.
console.log = (...args) => process.stderr.write(args.join(' ') + '\n')
console.info = console.warn = console.debug = console.log

function commands(handlers) {
  const input = readline.createInterface({ input: process.stdin })
  input.on('line', (line) => {
    if (!line.trim()) return
    const message = JSON.parse(line)
    Promise.resolve(handlers[message.cmd](message)).catch((error) => report('error', { message: String(error) }))
  })
  input.on('close', () => process.exit(0))
}

async function router() {
  const { HandoverRouter } = require(path.join(REPOSITORY, 'index.js'))
  const delayed = new Set()
  const adapter = {
    describe: () => 'the recording adapter',
    async apply(table) {
      report('apply', { table, at: Date.now() })
      const drains = table.servers.some((s) => s.state === 'drain')
      if (drains && config.drainDelayMs && !delayed.has(table.generation)) {
        delayed.add(table.generation)
        await sleep(config.drainDelayMs)
      }
      // Stamped before the router learns of it: no DRAINED can leave earlier.
      report('confirmed', { generation: table.generation, at: Date.now() })
    },
    async close() {},
  }
  const r = new HandoverRouter(adapter, { logLevel: 'error', ...config.options })
  r.on('change', (line, change) => report('change', change))
  r.on('error', (error) => report('adapter-error', { message: error.message }))
  await r.start()
  commands({ stats: () => report('stats', r.stats()) })
  report('ready', { pid: process.pid, id: r.id, subnets: r.subnets })
}

function instance() {
  const { HandoverStatus } = require(path.join(REPOSITORY, 'index.js'))
  const logger = (level, message) => report('log', { level, message })
  const status = new HandoverStatus(new Date(config.startedAt), config.service, config.addresses, { id: config.label }, {
    ...config.options,
    logger,
  })
  commands({
    up() {
      status.startBroadcastingServiceUp()
      report('up')
    },
    async drain({ timeoutMs }) {
      const draining = status.drain({ timeoutMs })
      report('draining', { at: Date.now() })
      const result = await draining
      report('drained', { report: result, at: Date.now() })
    },
  })
  report('ready', { pid: process.pid })
}

async function capture() {
  const dgram = require('node:dgram')
  for (const port of config.ports) {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    socket.on('message', (message, from) => report('packet', { port, from: from.address, hex: message.toString('hex') }))
    await new Promise((resolve) => socket.bind(port, resolve))
    socket.addMembership(GROUP, config.interface)
  }
  commands({})
  report('ready', { pid: process.pid })
}

const roles = { router, instance, capture }
Promise.resolve(roles[config.role]()).catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`)
  process.exit(1)
})
