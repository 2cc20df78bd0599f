'use strict'
// What the three built-in adapters share: the error they reject with, and
// the one rule for which of a table's servers take new requests.

const CODE = 'ERR_HANDOVER_PROXY'

/** An Error with code ERR_HANDOVER_PROXY; `cause` (an Error) is kept for whoever logs it. */
function proxyError(message, cause) {
  const error = new Error(message)
  error.code = CODE
  if (cause) error.cause = cause
  return error
}

/**
 * The servers that take new requests: the ready ones. When there is none,
 * the draining ones stay (a last resort, the same for every proxy): a
 * draining instance still answers until it closes, while an empty backend
 * fails every request at once. The router can call this too, to know that a
 * 'drain' server is still routed to.
 */
function routable(table) {
  const ready = table.servers.filter((s) => s.state === 'ready')
  return ready.length > 0 ? ready : table.servers.filter((s) => s.state === 'drain')
}

/** Checks the shape of a table, so that a bad one fails before the proxy is touched. */
function checkTable(table) {
  if (!table || !Array.isArray(table.servers)) throw proxyError('apply(table): table.servers must be an array')
  const seen = new Set()
  for (const s of table.servers) {
    if (!s || typeof s.address !== 'string' || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      throw proxyError(`apply(table): bad server ${JSON.stringify(s)}: needs an address string and a port 1–65535`)
    }
    if (s.state !== 'ready' && s.state !== 'drain') {
      throw proxyError(`apply(table): server ${s.address}:${s.port} has state ${JSON.stringify(s.state)}, not 'ready' or 'drain'`)
    }
    const key = endpoint(s)
    if (seen.has(key)) throw proxyError(`apply(table): ${key} is in the table twice`)
    seen.add(key)
  }
  return table
}

/** "ip:port", with IPv6 addresses in brackets as every proxy writes them. */
function endpoint(s) {
  return s.address.includes(':') ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`
}

/** Parses "host:port" or "[v6]:port"; null when `text` is not one. */
function hostPort(text) {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) || /^([^:/]+):(\d+)$/.exec(text)
  if (!m) return null
  const port = Number(m[2])
  return port >= 1 && port <= 65535 ? { host: m[1], port } : null
}

module.exports = { CODE, proxyError, routable, checkTable, endpoint, hostPort }
