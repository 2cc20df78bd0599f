'use strict'
// Free ports for the demo, so that it runs beside anything else on the host.

const dgram = require('node:dgram')
const net = require('node:net')

/** A UDP port nobody holds right now. */
function freeUdpPort() {
  const socket = dgram.createSocket('udp4')
  return new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, () => {
      const { port } = socket.address()
      socket.close(() => resolve(port))
    })
  })
}

/** Listens on host:port (0: any) and closes again; resolves with the port, or null if taken. */
function tryTcpPort(host, port) {
  const server = net.createServer()
  return new Promise((resolve, reject) => {
    server.once('error', (error) => (error.code === 'EADDRINUSE' ? resolve(null) : reject(error)))
    server.listen(port, host, () => {
      const taken = server.address().port
      server.close(() => resolve(taken))
    })
  })
}

/** A TCP port free on every one of the hosts (each instance serves on its own address, same port). */
async function freeTcpPortOn(hosts) {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const port = await tryTcpPort(hosts[0], 0)
    const others = await Promise.all(hosts.slice(1).map((host) => tryTcpPort(host, port)))
    if (others.every((p) => p === port)) return port
  }
  throw new Error(`no TCP port is free on all of ${hosts.join(', ')}`)
}

module.exports = { freeUdpPort, freeTcpPortOn }
