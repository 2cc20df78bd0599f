'use strict'
// The demo's proxies, both driven by HandoverRouter from the status channel:
//
// - the default: a small HTTP proxy in this process, whose adapter is a
//   list of backends in memory (the simplest adapter there is);
// - --proxy haproxy: a real HAProxy on loopback, with a slot backend, driven
//   through its Runtime API by the built-in adapter.
//
// Either way the router makes v2 routable when it says UP, drains v1 when it
// says DOWN, and tells v1 DRAINED once the proxy confirmed it: v1's shutdown
// callback awaits that (status.drain()) before it closes its server. No
// sleep anywhere.
//
// Status messages carry IPv4 addresses, not ports. As with containers on a
// balena bridge network, each instance has an address of its own and the
// service listens on one well-known port: here v1 serves on 127.0.0.2 and
// v2 on 127.0.0.3 (both loopback on Linux), on the same port, which the
// router is configured with as a proxy would be.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { HandoverRouter } = require('../index.js')
const { HAProxyAdapter } = require('../adapters')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** What the router says, as timeline lines about v1 and v2. */
function follow(router, timeline, nameOf, servicePort) {
  const names = new Map() // timestamp → v1/v2, from the routable lines
  router.on('change', (line, event) => {
    if (event.address) names.set(event.timestamp, nameOf(event.address))
    const name = names.get(event.timestamp) || 'an instance'
    switch (event.kind) {
      case 'routable':
        return timeline.log('router', `${name} is UP: routing to ${event.address}:${servicePort}`)
      case 'draining':
        return timeline.log('router', `${name} is DOWN: the proxy sends it no new requests`)
      case 'drained':
        return timeline.log('router', `proxy confirmed ${name}'s drain ${event.elapsedMs.toFixed(1)} ms after its DOWN: told it DRAINED`)
      case 'gone':
        return timeline.log('router', `${name} is gone`)
      default:
        return timeline.log('router', line)
    }
  })
}

/** Options shared by both proxies' routers: loopback only, the demo's own group and ports. */
function routerOptions({ service, servicePort, statusPort, routerPort, group }) {
  return {
    serviceName: service,
    servicePort,
    networkPort: statusPort,
    routerPort,
    statusBroadcastAddress: group,
    interfaceAddress: '127.0.0.1',
    subnets: ['127.0.0.0/8'],
    name: 'demo-proxy',
    logLevel: 'warning',
  }
}

/** The in-process proxy: round robin over the ready servers of the last table. */
class Router {
  constructor(config) {
    Object.assign(this, { timeline: config.timeline, servicePort: config.servicePort })
    /** Addresses the proxy sends new requests to. */
    this.backends = []
    this.next = 0
    this.retried = 0
    this.agent = new http.Agent({ keepAlive: false })
    const adapter = {
      describe: () => 'the demo proxy',
      // Reading back what was just set is trivial here: the list is ours.
      apply: async (table) => {
        this.backends = table.servers.filter((s) => s.state === 'ready').map((s) => s.address)
      },
    }
    this.router = new HandoverRouter(adapter, routerOptions(config))
    follow(this.router, config.timeline, config.nameOf, config.servicePort)
    this.server = http.createServer((request, response) => this.forward(request, response))
  }

  /** Starts following the status channel and serving; resolves with the proxy's URL. */
  async start() {
    await this.router.start()
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${this.server.address().port}/`
  }

  /** How many instances take new requests. */
  routed() {
    return this.backends.length
  }

  pick() {
    if (this.backends.length === 0) return undefined
    this.next = (this.next + 1) % this.backends.length
    return this.backends[this.next]
  }

  forward(request, response) {
    const address = this.pick()
    if (!address) {
      response.writeHead(503).end('no instance is UP\n')
      return
    }
    const { method, url: urlPath, headers } = request
    const upstream = http.request(
      { host: address, port: this.servicePort, method, path: urlPath, headers, agent: this.agent },
      (reply) => {
        response.writeHead(reply.statusCode, reply.headers)
        reply.pipe(response)
      },
    )
    upstream.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502).end(`${error.code || error.message}\n`)
      else response.destroy(error)
    })
    upstream.end()
  }

  async close() {
    await this.router.close()
    this.agent.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

/** HAProxy 2.6 on loopback, config in the demo's folder, driven through its Runtime API. */
class HAProxyRouter {
  constructor(config) {
    Object.assign(this, { config, servicePort: config.servicePort, retried: 'none (HAProxy)' })
    this.socket = path.join(config.workdir, 'haproxy.sock')
    this.ready = 0
    this.router = new HandoverRouter(new HAProxyAdapter({ socket: this.socket, backend: 'app' }), routerOptions(config))
    this.router.on('applied', (table) => (this.ready = table.servers.filter((s) => s.state === 'ready').length))
    follow(this.router, config.timeline, config.nameOf, config.servicePort)
  }

  async start() {
    const { workdir, frontendPort } = this.config
    const cfg = path.join(workdir, 'haproxy.cfg')
    fs.writeFileSync(
      cfg,
      [
        'global',
        `  stats socket ${this.socket} level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 10s',
        '  timeout server 10s',
        'frontend web',
        `  bind 127.0.0.1:${frontendPort}`,
        '  default_backend app',
        'backend app',
        '  server-template slot 1-4 127.0.0.1:9 disabled',
        '',
      ].join('\n'),
    )
    this.haproxy = spawn('haproxy', ['-q', '-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const failed = new Promise((resolve, reject) => {
      this.haproxy.on('error', (error) => reject(new Error(`cannot start haproxy: ${error.message} (is HAProxy installed? bash scripts/proxies.sh)`)))
    })
    await Promise.race([failed, this.until(() => connectable(this.socket), 5000, 'the HAProxy socket')])
    await this.router.start()
    return `http://127.0.0.1:${frontendPort}/`
  }

  async until(check, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
      await sleep(10)
    }
  }

  routed() {
    return this.ready
  }

  async close() {
    await this.router.close()
    if (this.haproxy) this.haproxy.kill('SIGKILL')
  }
}

function connectable(socketPath) {
  if (!fs.existsSync(socketPath)) return false
  return new Promise((resolve) => {
    const connection = net.connect(socketPath, () => {
      connection.destroy()
      resolve(true)
    })
    connection.on('error', () => resolve(false))
  })
}

module.exports = { Router, HAProxyRouter }
