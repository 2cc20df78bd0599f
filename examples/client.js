'use strict'
// Sends requests (through the router, or to the shared port) without pause, a few at a time, and
// counts who answered: the handover must not fail a single one.

const http = require('node:http')

class Client {
  constructor({ url, concurrency, timeline }) {
    Object.assign(this, { url, concurrency, timeline })
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
    this.servedBy = {}
    this.failed = 0
    this.failures = []
    this.running = false
    this.loops = []
  }

  start() {
    this.running = true
    this.loops = Array.from({ length: this.concurrency }, () => this.loop())
    this.timeline.log('client', `sending requests to ${this.url}, ${this.concurrency} at a time`)
  }

  /** Stops sending and resolves once every request under way has its answer. Idempotent. */
  async stop() {
    this.running = false
    await Promise.all(this.loops)
    this.agent.destroy()
  }

  async loop() {
    while (this.running) {
      const outcome = await this.request()
      if (outcome.version) {
        this.servedBy[outcome.version] = (this.servedBy[outcome.version] || 0) + 1
      } else {
        this.failed += 1
        if (this.failures.length < 5) this.failures.push(outcome.error)
        this.timeline.log('client', `request failed: ${outcome.error}`)
      }
    }
  }

  /** One GET: resolves with the version that served it, or the reason it failed. */
  request() {
    return new Promise((resolve) => {
      const request = http.get(this.url, { agent: this.agent, timeout: 5000 }, (response) => {
        response.resume()
        response.on('end', () => {
          const version = response.headers['x-served-by']
          resolve(response.statusCode === 200 && version ? { version } : { error: `HTTP ${response.statusCode}` })
        })
        response.on('error', (error) => resolve({ error: error.message }))
      })
      request.on('timeout', () => request.destroy(new Error('timed out')))
      request.on('error', (error) => resolve({ error: error.code || error.message }))
    })
  }
}

module.exports = { Client }
