'use strict'
// One instance of the demo's web service, run as a child process by the
// simulated supervisor. It uses the library as a real service would:
//
//   start → warm up → serve HTTP → announce UP (status) and its startedAt (handover)
//   younger instance heard → announce DOWN → wait for the routers' DRAINED → close → return
//
// and then waits to be killed, as on balenaOS: exiting would make the
// container engine restart it. Events go to the parent over IPC for the timeline.

const http = require('node:http')
const { HandoverPeer, HandoverStatus, listenShared } = require('../index.js')

const config = JSON.parse(process.argv[2])
const { version, host, port, warmupMs, workMs, drainTimeoutMs, hostNetwork } = config

/** Loopback only: the demo must not send a packet off this machine. */
const LOOPBACK = { networkMode: 'host', networkInterface: 'lo', address: config.group, logLevel: 'warning' }
const SERVICE = 'web'

const report = (event, details = {}) => process.send({ event, ...details })
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const startedAt = new Date()
const peer = new HandoverPeer(startedAt, { id: version }, {
  ...LOOPBACK,
  port: config.handoverPort,
  serviceName: SERVICE,
  handoverCompletePath: config.completePath,
  // Safety net: even a stuck drain must not hold the handover up for long.
  callbackTimeoutMs: 3000,
})
const status = new HandoverStatus(startedAt, SERVICE, [host], { id: version }, {
  ...LOOPBACK,
  port: config.statusPort,
  routerPort: config.routerPort,
})

let served = 0
let inFlight = 0
let handingOver = false
const server = http.createServer((request, response) => {
  inFlight += 1
  response.on('close', () => (inFlight -= 1))
  // Some work, so that requests are in flight when the handover comes.
  setTimeout(() => {
    // Handing over: no client or proxy is to keep a connection we want to
    // close (decided when answering: a request that came before the
    // handover is answered after it began).
    if (handingOver) response.setHeader('connection', 'close')
    served += 1
    response.setHeader('x-served-by', version)
    response.end(`hello from ${version}\n`)
  }, workMs)
})

/** The shutdown callback: hand the traffic over without failing a request. */
async function drain() {
  report('draining', { inFlight })
  handingOver = true
  if (hostNetwork) return drainShared()
  // DOWN, then wait until every router confirmed that its proxy sends us
  // nothing new: closing the listening socket before that would refuse
  // requests already on their way here.
  const routers = await status.drain({ timeoutMs: drainTimeoutMs })
  report('routersDone', {
    acknowledged: routers.acknowledged.map((r) => r.name),
    timedOut: routers.timedOut.map((r) => r.name),
    waitedMs: routers.waitedMs,
  })
  // Stop accepting; resolves once every in-flight request has been answered.
  await new Promise((resolve) => server.close(resolve))
  report('drained', { served })
}

/**
 * --host-network: both instances listen on one port (listenShared). New
 * connections already go to the younger one, and this listener was drained
 * before the callback: answer what is in flight, let the clients' keep-alive
 * connections end (each gets \`Connection: close\` on its next response),
 * then close.
 */
async function drainShared() {
  status.startBroadcastingServiceDown()
  for (let waited = 0; waited < 2000; waited += 5) {
    const open = await new Promise((resolve) => server.getConnections((error, n) => resolve(error ? 0 : n)))
    if (open === 0) break
    await sleep(5)
  }
  await new Promise((resolve) => server.close(resolve))
  report('drained', { served })
}

// The callback itself marks the moment a younger instance was heard: the
// 'shuttingDown' event may reach JS after the callback has started.
peer.on('handover', (event) =>
  report('handoverDone', {
    heardStartedAt: event.heardStartedAt,
    completeFile: event.completeFile,
    error: event.completeFileError || event.callbackError,
  }),
)
peer.startListening(drain)

async function start() {
  await sleep(warmupMs) // loading, migrations, caches…
  if (hostNetwork) {
    // One port for both instances; ours gets new connections at startBroadcasting().
    await listenShared(server, { port, host, peer, logLevel: 'warning' }).listening
  } else {
    await new Promise((resolve) => server.listen(port, host, resolve))
  }
  // Routers first, then the older instance: by the time it drains, we are routed to.
  status.startBroadcastingServiceUp()
  peer.startBroadcasting()
  report('ready', { startedAt: startedAt.valueOf() })
}

start()

// The demo is our supervisor: if it goes away, so do we (no orphans).
process.on('disconnect', () => process.exit(0))
