'use strict'
// The load client of the routing load proofs: a steady rate of GETs over a
// few keep-alive connections through the proxy, counting every request's
// outcome. Run by test-support/routing/scenario.js in the proxy namespace.
//
// argv: url rate sockets [timeoutMs]
//
// It first asks one request at a time until the proxy answered 20 in a row
// (the proxy is up and routes), then says { event: 'started' } and starts the
// steady load. stdin commands, one per line:
//   settle <n>   say { event: 'settled', since, at } once <n> requests in a
//                row, due after the command, were ok within 250 ms (the proxy
//                routes and no backlog is left); `since`: when the first was due
//   stop         say the result (below) and exit
//
// argv sockets bounds the connections (default 512). Requests are issued on schedule (rate per second), whatever the answers
// do, so a stall shows as latency rather than as fewer requests; a request
// waiting for a free connection counts that wait in its latency.
//
// A request sent on a reused keep-alive connection that ends without any
// byte of a response (ECONNRESET, socket hang up) is sent again once, on a
// new connection, as
// standard HTTP clients do (RFC 9112 §9.3.1; Node documents the same with
// `request.reusedSocket`): it counts as `retried` with the next attempt's
// outcome, never as failed, and the count is reported. A new connection
// the proxy resets before any byte of the answer is sent again once too, as
// an idempotent GET may be (RFC 9110 §9.2.2; Caddy 2.6 resets a few
// connections it accepts while it swaps its config, and a hand-over swaps it
// twice within milliseconds, so one request can meet both kinds): counted
// apart, as `resetNewConnection`. Records' `retried` has bit 1 for the first
// kind and bit 2 for this one, so a report can tell the two.
//
// stdout, one JSON object per line:
//   { event: 'first', backend, at, sentAt, wroteAt }  the first answer from each backend
//       (wroteAt: when that request was written to its connection)
//   { event: 'result', records: [[sentAt, ms, outcome, backend, retried, wroteAt, firstAttempt?], …] }
//       (firstAttempt: for a failed request, how its first attempt failed and on which connection)
//       once stdin says `stop` (or closes): outcome is 'ok', 'http:<code>' or
//       'error:<code>'; sentAt is ms since the epoch (fractional).

const http = require('node:http')
const { performance } = require('node:perf_hooks')

const [url, rateText, socketsText, timeoutText] = process.argv.slice(2)
const rate = Number(rateText || 300)
const timeoutMs = Number(timeoutText || 5000)
// Free connections are reused most recent first (the Agent's 'lifo'), so a steady load uses a few
// of them; more open only while answers stall, as a client population would.
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(socketsText || 512) })
/** Retries: a connection of their own each (keepAlive off), never one of the pool's. */
const retryAgent = new http.Agent({ keepAlive: false })
const now = () => performance.timeOrigin + performance.now()
const say = (object) => process.stdout.write(`${JSON.stringify(object)}\n`)

const records = []
const seen = new Set()
let inFlight = 0
let stopping = false

/** One attempt (on a new connection when `fresh`): resolves { outcome, backend, retryable }. */
function attempt(fresh = false) {
  return new Promise((resolve) => {
    let answered = false
    let wroteAt = null
    const request = http.get(url, { agent: fresh ? retryAgent : agent, timeout: timeoutMs }, (response) => {
      answered = true
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk) => (body += chunk))
      response.on('end', () => {
        const ok = response.statusCode >= 200 && response.statusCode < 300
        resolve({ outcome: ok ? 'ok' : `http:${response.statusCode}`, backend: ok ? body : null, wroteAt })
      })
      response.on('error', (error) => resolve({ outcome: `error:${error.code || error.message}`, backend: null }))
    })
    // When the request left on a connection: what the proxy routes, unlike when it was due.
    request.on('finish', () => (wroteAt = now()))
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })))
    request.on('error', (error) => {
      if (answered) return
      const code = error.code || error.message
      const reset = code === 'ECONNRESET' || code === 'EPIPE'
      // Closed by the server before any byte of the response, on a connection used before (1),
      // or on a new one (2).
      const retryable = reset ? (request.reusedSocket ? 1 : 2) : 0
      resolve({ outcome: `error:${code}`, backend: null, retryable, reused: Boolean(request.reusedSocket) })
    })
  })
}

async function one(sentAt) {
  inFlight += 1
  let result = await attempt()
  let retried = 0
  // How a failure began: the first attempt's outcome, and whether its connection was a reused one.
  const first = result.outcome === 'ok' ? null : `${result.outcome}${result.reused ? ' (reused connection)' : ' (new connection)'}`
  // Each kind of reset is sent again at most once, on a new connection, as RFC 9112 §9.3.1 has
  // it: the pool's other idle connections to the same proxy process may be closing too (an nginx
  // worker that quits closes all of its idle ones).
  while (result.retryable && !(retried & result.retryable)) {
    retried |= result.retryable
    result = await attempt(true)
  }
  const ms = now() - sentAt
  if (result.backend && !seen.has(result.backend)) {
    seen.add(result.backend)
    say({ event: 'first', backend: result.backend, sentAt, wroteAt: result.wroteAt, at: now() })
  }
  settleCheck(result.outcome, sentAt, ms)
  const wrote = result.wroteAt ? Math.round(result.wroteAt * 10) / 10 : null
  records.push([Math.round(sentAt * 10) / 10, Math.round(ms * 100) / 100, result.outcome, result.backend, retried, wrote, ...(first && result.outcome !== 'ok' ? [first] : [])])
  inFlight -= 1
}

let settling = null
let streak = 0
let streakSince = 0
/** Settled: `n` requests in a row, due after the command, ok and answered within SETTLED_MS (no backlog left). */
const SETTLED_MS = 250
function settleCheck(outcome, sentAt, ms) {
  if (settling && sentAt < settling.asked) return
  if (outcome !== 'ok' || ms > SETTLED_MS) {
    streak = 0
    return
  }
  if (streak === 0) streakSince = sentAt
  streak += 1
  if (settling && streak >= settling.n) {
    say({ event: 'settled', since: streakSince, at: now() })
    settling = null
  }
}

async function probe() {
  const deadline = now() + 30_000
  let inRow = 0
  while (inRow < 20) {
    if (now() > deadline) throw new Error(`the proxy at ${url} did not answer 20 requests in a row within 30 s`)
    const { outcome } = await attempt()
    inRow = outcome === 'ok' ? inRow + 1 : 0
    if (outcome !== 'ok') await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

let started = 0
let issued = 0
let ticker = null
function steady() {
  say({ event: 'started', at: now() })
  started = now()
  ticker = setInterval(() => {
  const due = Math.floor(((now() - started) * rate) / 1000)
  while (issued < due && !stopping) {
    // The time it was due, not the time the timer ran.
    one(started + (issued * 1000) / rate)
    issued += 1
  }
}, 2)
}

async function stop() {
  if (stopping) return
  stopping = true
  clearInterval(ticker)
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5))
  agent.destroy()
  // Exit only once the (large) line is written: a pipe takes it in pieces.
  process.stdout.write(`${JSON.stringify({ event: 'result', records })}\n`, () => process.exit(0))
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (data) => {
  input += data
  let newline
  while ((newline = input.indexOf('\n')) >= 0) {
    const [command, n] = input.slice(0, newline).trim().split(/\s+/)
    input = input.slice(newline + 1)
    if (command === 'stop') stop()
    // Only requests sent from now on count: the streak before the command is history.
    if (command === 'settle') {
      settling = { n: Number(n), asked: now() }
      streak = 0
    }
  }
})
process.stdin.on('end', stop)

probe().then(steady, (error) => {
  say({ event: 'error', message: error.message })
  process.exit(1)
})
