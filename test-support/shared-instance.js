'use strict'
// One instance of a host-network HTTP service for the shared-listener
// tests: listens on PORT through listenShared, hands over through a
// HandoverPeer on loopback, and exits once it handed over.
// argv: port handoverPort version [plain]
// 'plain' listens without sharing, as a service does before it migrates
// (retrying EADDRINUSE); 'joined' shares but broadcasts only on SIGUSR2;
// 'nosteer' shares without cBPF steering (as where the kernel refuses it);
// 'reuseport' is Node's own listen({ reusePort: true }) (Node 22.12+).
// Prints READY <version> when serving, and HANDED <version> <json> at the end.

const http = require('node:http')
const { HandoverPeer, listenShared } = require('../index.js')

const [port, handoverPort, version, mode] = process.argv.slice(2)
let draining = false
let served = 0
const server = http.createServer((request, response) => {
  served++
  // Once handing over, every response ends its connection, so that no
  // client reuses a connection this instance is about to close.
  if (draining) response.setHeader('Connection', 'close')
  response.end(version)
})
server.keepAliveTimeout = 60_000

const peer = new HandoverPeer(new Date(), { id: version }, {
  port: Number(handoverPort),
  networkMode: 'host',
  networkInterface: 'lo',
  logLevel: process.env.LOG_LEVEL || 'warning',
  // A folder that does not exist: the complete file is not this test's subject.
  handoverCompletePath: '/nonexistent-handover-test/handover-complete',
})
let shared = null
peer.startListening(async () => {
  draining = true
  const stats = shared ? shared.stats() : null
  // Every response now ends its connection, so no client reuses one we
  // close. Connections still open are waited for (a steady client sends
  // its next request at once and gets that answer); only after 2 s are
  // idle ones closed. server.close() alone would close idle keep-alive
  // connections (Node 19+) while a client may be sending on them.
  const deadline = Date.now() + 2000
  for (;;) {
    const open = await new Promise((resolve) => server.getConnections((e, n) => resolve(e ? 0 : n)))
    if (open === 0) break
    if (Date.now() > deadline) {
      if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections()
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await new Promise((resolve) => server.close(resolve))
  process.stdout.write(`HANDED ${version} ${JSON.stringify({ served, stats })}\n`)
  setImmediate(() => process.exit(0))
})
peer.on('error', (e) => console.error(e))

if (mode === 'plain') {
  // Without a shared listener, the best a service can do: announce at
  // once, and retry its listen every 25 ms until the older instance closed
  // (a service that lets EADDRINUSE crash it restarts far slower, and never
  // announces).
  peer.startBroadcasting()
  const started = Date.now()
  const listen = () => server.listen(Number(port), '127.0.0.1')
  server.on('error', (error) => {
    if (error.code !== 'EADDRINUSE') throw error
    setTimeout(listen, 25)
  })
  server.once('listening', () => process.stdout.write(`READY ${version} ${JSON.stringify({ retriedMs: Date.now() - started })}\n`))
  listen()
} else if (mode === 'reuseport') {
  // Node's own reusePort (22.12+, 23.1+): shares the port, no steering, no drain.
  server.listen({ port: Number(port), host: '127.0.0.1', reusePort: true }, () => {
    peer.startBroadcasting()
    process.stdout.write(`READY ${version} {}\n`)
  })
} else if (mode === 'joined') {
  // Joins the port's group but broadcasts only on SIGUSR2 (for measuring steering).
  shared = listenShared(server, { port: Number(port), host: '127.0.0.1', peer, logLevel: process.env.LOG_LEVEL || 'warning' })
  process.on('SIGUSR2', () => peer.startBroadcasting())
  shared.listening.then(() =>
    process.stdout.write(`READY ${version} ${JSON.stringify({ ...shared.stats(), retriedMs: shared.retriedMs })}\n`),
  )
} else {
  shared = listenShared(server, { port: Number(port), host: '127.0.0.1', peer, logLevel: process.env.LOG_LEVEL || 'warning', steering: mode !== 'nosteer' })
  // Broadcast at once, even while a listener that does not share the port
  // holds it: that older instance closes only once it heard us.
  peer.startBroadcasting()
  shared.listening.then(() =>
    process.stdout.write(`READY ${version} ${JSON.stringify({ ...shared.stats(), retriedMs: shared.retriedMs })}\n`),
  )
}
