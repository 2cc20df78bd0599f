'use strict'
// One instance of `api`. It serves HTTP on PORT, says UP on the status
// channel so that the proxy's router routes to it, and when a newer instance
// starts it says DOWN, waits until the routers have stopped sending it new
// requests, finishes what is in flight and lets the supervisor kill it.

const http = require('node:http')
const os = require('node:os')
const { HandoverPeer, HandoverStatus } = require('handover-native')

const port = Number(process.env.PORT || 8080)
const service = process.env.BALENA_SERVICE_NAME || 'api' // balena sets it
const startedAt = new Date()

// This container's IPv4 addresses: where the router sends requests.
const addresses = Object.values(os.networkInterfaces())
  .flat()
  .filter((a) => (a.family === 'IPv4' || a.family === 4) && !a.internal)
  .map((a) => a.address)

let handingOver = false
const server = http.createServer((request, response) => {
  // Handing over: clients should not keep a connection we are about to close.
  if (handingOver) response.setHeader('connection', 'close')
  response.end(`hello from ${service}, started ${startedAt.toISOString()}\n`)
})

// Which connections carry a request now: once the routers drained us, the
// others are ended, since a proxy may keep idle connections to us that it
// will never use again (and server.close() would wait for them).
const busy = new Map()
server.on('connection', (socket) => {
  busy.set(socket, false)
  socket.on('close', () => busy.delete(socket))
})
server.on('request', (request, response) => {
  busy.set(request.socket, true)
  response.on('finish', () => busy.set(request.socket, false))
})

const peer = new HandoverPeer(startedAt)
const status = new HandoverStatus(startedAt, service, addresses)

const names = (routers) => routers.map((r) => `${r.name} (${r.address})`).join(', ') || 'none'

peer.startListening(async () => {
  handingOver = true
  // Says DOWN, then resolves once every router heard lately has drained us
  // in its proxy, or after 10 s. With no router heard it resolves at once.
  const report = await status.drain({ timeoutMs: 10000 })
  console.log(
    `drained in ${report.waitedMs} ms; acknowledged: ${names(report.acknowledged)}; timed out: ${names(report.timedOut)}`,
  )
  // No new requests come now: finish the ones in flight, then close.
  const closed = new Promise((resolve) => server.close(resolve))
  for (const [socket, inUse] of busy) if (!inUse) socket.destroy()
  await closed
})

server.listen(port, () => {
  // UP first, so that the routers route to us before the old instance drains.
  status.startBroadcastingServiceUp()
  peer.startBroadcasting()
})
