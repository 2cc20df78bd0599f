'use strict'
// One instance of a Jellyfish-shaped service, for the routing load proofs:
// run by test-support/routing/scenario.js inside an instance namespace
// (test-support/routing/topology.js), which plays balena-supervisor.
//
//   HTTP server on <address>:<port>, answering 200 with its version
//   a HandoverPeer whose shutdown callback drains and closes the server
//   a HandoverStatus announcing UP with <address> (ours only)
//
// argv: version address port [--lib original|ours] [--routed]
//   --lib original  require('handover-lib') (0.0.10: HandoverPeer only, so no status)
//   --lib ours      the repository's index.js as a plain drop-in: the callback
//                   announces DOWN and closes the server at once, as users do today
//   --routed        ours, and the callback awaits status.drain() (every router
//                   heard has stopped routing new requests here), then closes
//
// Once the callback starts, every response carries `Connection: close`
// (env CONNECTION_CLOSE=0 turns that off, to measure what it is for): a
// proxy's pooled connection then ends after the response it is reading, and
// is never found closed by server.close() under its next request.
// server.close() (Node 19+) closes idle keep-alive connections at once.
//
// The handover-complete file: env BALENA_SERVICE_HANDOVER_COMPLETE_PATH for
// ours; handover-lib always writes /tmp/balena/handover-complete, which the
// scenario bind-mounts to a per-instance folder in a private mount namespace
// (as balenaOS bind-mounts a per-container folder there).
//
// stdout, one JSON object per line: { event: 'ready' | 'handing' | 'drained' | 'closed', at, … }.
// The instance then waits to be killed, as on balenaOS.

const http = require('node:http')
const path = require('node:path')

const args = process.argv.slice(2)
const [version, address, portText] = args
const port = Number(portText)
const lib = args.includes('--lib') ? args[args.indexOf('--lib') + 1] : 'ours'
const routed = args.includes('--routed')
const connectionClose = process.env.CONNECTION_CLOSE !== '0'
const SERVICE = process.env.BALENA_SERVICE_NAME || 'api'

const say = (event, details = {}) => process.stdout.write(`${JSON.stringify({ event, version, at: Date.now(), ...details })}\n`)

let served = 0
let lastServedAt = 0
let handingOver = false
let handingAt = 0
let servedAfterHanding = 0
const server = http.createServer((request, response) => {
  served += 1
  lastServedAt = Date.now()
  if (handingOver) {
    servedAfterHanding += 1
    if (connectionClose) response.setHeader('Connection', 'close')
  }
  response.setHeader('Content-Type', 'text/plain')
  response.end(version)
})
// Longer than any proxy's idle timeout towards it: the proxy ends idle connections, not us.
server.keepAliveTimeout = 65_000

const startedAt = new Date()
let peer
let status = null
if (lib === 'original') {
  const { HandoverPeer } = require('handover-lib')
  peer = new HandoverPeer(startedAt, { id: version })
} else {
  const { HandoverPeer, HandoverStatus } = require(path.join(__dirname, '..', '..', 'index.js'))
  const logLevel = process.env.LOG_LEVEL || 'warning'
  peer = new HandoverPeer(startedAt, { id: version }, { logLevel, serviceName: SERVICE })
  status = new HandoverStatus(startedAt, SERVICE, [address], { id: version }, { logLevel })
}

// Connections and whether a request is under way on each. Once every router
// confirmed the drain nothing new comes here, so a connection without a
// request is ended at close(): a proxy may hold idle connections it will
// never use again (Caddy dials spare ones, and keeps them after the upstream
// left its config), which server.close() would otherwise wait for.
const busy = new Map()
server.on('connection', (socket) => {
  busy.set(socket, false)
  socket.on('close', () => busy.delete(socket))
})
server.on('request', (request, response) => {
  busy.set(request.socket, true)
  response.on('finish', () => busy.set(request.socket, false))
})
const closeServer = () =>
  new Promise((resolve) => {
    server.close(resolve)
    for (const [socket, inUse] of busy) if (!inUse) socket.destroy()
  })

peer.startListening(async () => {
  handingOver = true
  handingAt = Date.now()
  say('handing')
  if (routed) {
    const report = await status.drain({ timeoutMs: 10_000 })
    say('drained', { report, servedAfterHanding, lastServedAt })
  } else if (status) {
    // What a user of the status channel does today: announce DOWN, and go.
    status.startBroadcastingServiceDown()
  }
  await closeServer()
  say('closed', { served, servedAfterHanding, lastServedAt, handingAt })
})

server.listen(port, address, () => {
  if (status) status.startBroadcastingServiceUp()
  peer.startBroadcasting()
  say('ready', { lib, routed, connectionClose, pid: process.pid })
})

// The scenario is our supervisor: if it goes, so do we.
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
