'use strict'
// Caddy through its admin API: the upstreams of one reverse_proxy handler,
// the one tagged "@id" in Caddy's JSON config (tested with 2.6):
//
//   { "admin": { "listen": "127.0.0.1:2019" },
//     "apps": { "http": { "servers": { "app": { "listen": [":80"],
//       "routes": [ { "handle": [ { "handler": "reverse_proxy", "@id": "handover",
//                                   "upstreams": [] } ] } ] } } } } }
//
// (A Caddyfile cannot carry "@id": run `caddy adapt` on it and add the tag
// to the JSON.) Caddy has no drain state: a draining server is left out of
// the upstreams. That is graceful: Caddy swaps the config while requests on
// the old one run to their end. Replacing the list is one atomic change, so
// a new server is routable at the very moment an old one stops being.
//
// A change that removes an upstream is not yet a confirmed drain when Caddy
// answers it: requests Caddy routed there just before are still on their
// way (its old servers finish in the background, and under load a proxied
// request can take milliseconds to be written), and an instance that closes
// its idle connections at once would cut them (seen under load: 502, EOF or
// a reset on Caddy's pooled connection). Caddy shows no count of them once
// the upstream left its config, so such an apply resolves `settleMs` after
// Caddy took the change.

const http = require('node:http')
const { Adapter, proxyError, routable, endpoint } = require('./common')

const DEFAULT_ADMIN = 'http://127.0.0.1:2019'
const TIMEOUT_MS = 5000
const SETTLE_MS = 100

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class CaddyAdapter extends Adapter {
  constructor(options = {}) {
    super()
    const env = process.env
    this.admin = String(options.admin || env.HANDOVER_CADDY_ADMIN || DEFAULT_ADMIN).replace(/\/+$/, '')
    this.id = String(options.id || env.HANDOVER_CADDY_ID || 'handover')
    this.timeoutMs = options.timeoutMs || TIMEOUT_MS
    this.settleMs = settleTime(options.settleMs ?? env.HANDOVER_CADDY_SETTLE_MS)
    // When Caddy last took a change that removed an upstream.
    this.removedAt = -Infinity
    this.path = `/id/${encodeURIComponent(this.id)}/upstreams`
    // unix//run/caddy/admin.sock as Caddy writes a unix admin address; else http://host:port
    const unix = /^unix\/(\/.+)$/.exec(this.admin)
    if (unix) {
      this.target = { socketPath: unix[1] }
    } else {
      let url
      try {
        url = new URL(this.admin)
      } catch {
        throw proxyError(`Caddy admin address ${JSON.stringify(this.admin)} is neither http://host:port nor unix//path`)
      }
      this.target = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) || 80 }
    }
  }

  describe() {
    return `Caddy admin API at ${this.admin}, reverse_proxy "@id": "${this.id}"`
  }

  async applyNow(table) {
    const current = await this.upstreams()
    const dials = routable(table).map(endpoint)
    if (sameDials(current, dials)) return this.settled() // already so: one GET
    const removes = (current || []).some((u) => !u || !dials.includes(u.dial))
    // A kept upstream keeps the fields the user gave it (max_requests, …).
    const list = dials.map((dial) => (current || []).find((u) => u && u.dial === dial) || { dial })
    // PATCH replaces the list; PUT creates it when the handler had none.
    await this.request(current ? 'PATCH' : 'PUT', this.path, list)
    if (removes) this.removedAt = Date.now()
    const now = await this.upstreams()
    if (!sameDials(now, dials)) {
      throw proxyError(`Caddy did not take the change: upstreams of "@id": "${this.id}" are ${JSON.stringify(now)}, expected ${JSON.stringify(dials)}`)
    }
    await this.settled()
  }

  /** Resolves once requests routed before the last change that removed an upstream had `settleMs` to get there. */
  async settled() {
    const left = this.removedAt + this.settleMs - Date.now()
    if (left > 0) await sleep(left)
  }

  /** The handler's upstreams, or null when it has none yet. */
  async upstreams() {
    const body = await this.request('GET', this.path)
    return body === null || body === undefined ? null : body
  }

  request(method, path, payload) {
    return new Promise((resolve, reject) => {
      const data = payload === undefined ? null : Buffer.from(JSON.stringify(payload))
      // No Origin header: Caddy checks it only when present (or enforce_origin is on).
      const headers = { Accept: 'application/json' }
      if (data) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': data.length })
      const req = http.request({ ...this.target, method, path, headers, agent: false })
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)))
      req.on('error', (e) => reject(this.unreachable(e)))
      req.on('response', (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('error', (e) => reject(this.unreachable(e)))
        res.on('end', () => {
          if (res.statusCode >= 200 && res.statusCode < 300) {
            try {
              return resolve(text.trim() ? JSON.parse(text) : null)
            } catch {
              return reject(proxyError(`Caddy's admin API at ${this.admin} answered ${method} ${path} with something not JSON: ${text.slice(0, 200)}`))
            }
          }
          reject(this.refused(method, path, res.statusCode, text))
        })
      })
      req.end(data)
    })
  }

  refused(method, path, status, text) {
    let message = text.trim()
    try {
      message = JSON.parse(message).error || message
    } catch {}
    if (status === 404 && /unknown object id/i.test(message)) {
      return proxyError(`Caddy has no config object with "@id": "${this.id}"; tag the reverse_proxy handler in Caddy's JSON config with "@id": "${this.id}" (or set the id option, HANDOVER_CADDY_ID)`)
    }
    return proxyError(`Caddy's admin API at ${this.admin} answered ${method} ${path} with ${status}: ${message.slice(0, 300)}`)
  }

  unreachable(error) {
    return proxyError(`cannot reach Caddy's admin API at ${this.admin}: ${error.message}; is Caddy running with its admin endpoint there ("admin": {"listen": ...} in its config, or HANDOVER_CADDY_ADMIN)?`, error)
  }
}

/** settleMs (option or HANDOVER_CADDY_SETTLE_MS): whole milliseconds, default SETTLE_MS. */
function settleTime(value) {
  if (value === undefined || value === null || value === '') return SETTLE_MS
  const ms = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value
  if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) {
    throw proxyError(`Caddy settleMs (HANDOVER_CADDY_SETTLE_MS) must be whole milliseconds from 0 to 60000; got ${JSON.stringify(value)}`)
  }
  return ms
}

function sameDials(upstreams, dials) {
  if (!Array.isArray(upstreams) || upstreams.length !== dials.length) return false
  const have = upstreams.map((u) => u && u.dial).sort()
  const want = [...dials].sort()
  return have.every((d, i) => d === want[i])
}

module.exports = { CaddyAdapter }
