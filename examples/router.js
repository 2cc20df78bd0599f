'use strict'
// A reverse proxy that follows the status channel: it routes to the
// instances of the service that announced UP and stops routing to one as
// soon as it announces DOWN.
//
// DOWN is terminal for an instance, which a message names by its service
// and its timestamp (the instance's startedAt). A draining instance keeps
// announcing UP every 10 s besides DOWN every 100 ms, as handover-lib does,
// so a later UP from an instance that sent DOWN must not bring it back. A
// new instance has a new timestamp, even on a reused address.
//
// Status messages carry IPv4 addresses, not ports. As with containers on a
// balena bridge network, each instance has an address of its own and the
// service listens on one well-known port: here v1 serves on 127.0.0.2 and
// v2 on 127.0.0.3 (both loopback on Linux), on the same port, which the
// router is configured with as a proxy would be.

const http = require('node:http')
const { HandoverStatus } = require('../index.js')

/** Connections refused by a backend are retried on another this many times. */
const RETRIES = 2

class Router {
  constructor({ service, servicePort, statusPort, group, timeline, nameOf }) {
    Object.assign(this, { service, servicePort, timeline, nameOf })
    /** Addresses of instances that announced UP, in the order they did. */
    this.backends = []
    /**
     * Instances (`service@timestamp`) that announced DOWN: never routed to
     * again. A long-running router may forget an entry once the instance is
     * surely gone (the supervisor kills it at the handover timeout at the latest).
     */
    this.down = new Set()
    this.next = 0
    this.retried = 0
    // One connection per request: no idle keep-alive connection can be cut
    // under a request while an instance drains.
    this.agent = new http.Agent({ keepAlive: false })
    this.status = new HandoverStatus(new Date(), 'router', [], { id: 'router' }, {
      networkMode: 'host',
      networkInterface: 'lo',
      address: group,
      port: statusPort,
      logLevel: 'warning',
    })
    this.server = http.createServer((request, response) => this.forward(request, response))
  }

  /** Starts following the status channel and serving; resolves with the router's URL. */
  async start() {
    this.status.startListening((message) => this.follow(message))
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${this.server.address().port}/`
  }

  follow({ serviceName, timestamp, addresses, status }) {
    if (serviceName !== this.service) return
    const instance = `${serviceName}@${timestamp}`
    if (status === 'DOWN') this.down.add(instance)
    else if (this.down.has(instance)) return // an UP from an instance that is draining
    for (const address of addresses) {
      const routed = this.backends.includes(address)
      if (status === 'UP' && !routed) {
        this.backends.push(address)
        this.timeline.log('router', `${this.nameOf(address)} is UP: routing to ${address}:${this.servicePort}`)
      } else if (status === 'DOWN' && routed) {
        this.drop(address)
        this.timeline.log('router', `${this.nameOf(address)} is DOWN: no longer routing to ${address}`)
      }
    }
  }

  drop(address) {
    this.backends = this.backends.filter((a) => a !== address)
  }

  /** Round robin over the instances that are UP. */
  pick() {
    if (this.backends.length === 0) return undefined
    this.next = (this.next + 1) % this.backends.length
    return this.backends[this.next]
  }

  forward(request, response, attempt = 0) {
    const address = this.pick()
    if (!address) {
      response.writeHead(503).end('no instance is UP\n')
      return
    }
    // The demo's requests have no body, so a refused one can be sent again as is.
    const { method, url: path, headers } = request
    const upstream = http.request(
      { host: address, port: this.servicePort, method, path, headers, agent: this.agent },
      (reply) => {
        response.writeHead(reply.statusCode, reply.headers)
        reply.pipe(response)
      },
    )
    upstream.on('error', (error) => {
      if (error.code === 'ECONNREFUSED' && attempt < RETRIES) {
        // Gone without a DOWN (crashed, or killed at the handover timeout).
        this.retried += 1
        this.drop(address)
        this.timeline.log('router', `${this.nameOf(address)} refused a connection: dropped it, retrying elsewhere`)
        this.forward(request, response, attempt + 1)
      } else if (!response.headersSent) {
        response.writeHead(502).end(`${error.code || error.message}\n`)
      } else {
        response.destroy(error)
      }
    })
    upstream.end()
  }

  close() {
    this.status.close()
    this.agent.destroy()
    return new Promise((resolve) => this.server.close(resolve))
  }
}

module.exports = { Router }
