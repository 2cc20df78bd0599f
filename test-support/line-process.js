'use strict'
// A child process that speaks JSON lines (test-support/child.js and
// friends): what it reported so far, and waiting for its next report.

const readline = require('node:readline')

const REPLY_MS = 5_000

/**
 * A child process speaking JSON lines: what it reported so far, and waiting
 * for the next report of a kind. A wait fails at its timeout, or as soon as
 * the process is gone, with the tail of its stderr.
 */
class LineProcess {
  constructor(label, child) {
    this.label = label
    this.child = child
    this.reports = []
    this.waiters = new Set()
    this.stderrTail = ''
    this.closed = false
    // Writing to a child that died fails with EPIPE; the waiters report it.
    child.stdin.on('error', () => {})
    child.stderr.on('data', (chunk) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000)
    })
    readline.createInterface({ input: child.stdout }).on('line', (line) => this.received(line))
    // 'close' comes after the last line of stdout was read.
    child.on('close', () => {
      this.closed = true
      for (const waiter of this.waiters) waiter.fail('')
    })
  }

  received(line) {
    let report
    try {
      report = JSON.parse(line)
    } catch {
      return // a log line of the original's logger
    }
    if (!report || typeof report.event !== 'string') return
    this.reports.push(report)
    for (const waiter of this.waiters) if (waiter.event === report.event) waiter.done(report)
  }

  /** The first report of `event` from index `from` on, now or when it comes. */
  next(event, { from = 0, timeoutMs = REPLY_MS } = {}) {
    const seen = this.reports.find((r, i) => i >= from && r.event === event)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const settle = (outcome) => {
        clearTimeout(timer)
        this.waiters.delete(waiter)
        outcome()
      }
      const waiter = {
        event,
        done: (report) => settle(() => resolve(report)),
        fail: (within) => settle(() => reject(this.failure(`no '${event}' report${within}`))),
      }
      const timer = setTimeout(() => waiter.fail(` within ${timeoutMs} ms`), timeoutMs)
      this.waiters.add(waiter)
      if (this.closed) waiter.fail('')
    })
  }

  has(event) {
    return this.reports.some((r) => r.event === event)
  }

  /** Sends a command and waits for the report it answers with. */
  async ask(message, answer, timeoutMs) {
    const from = this.reports.length
    this.child.stdin.write(JSON.stringify(message) + '\n')
    return this.next(answer, { from, timeoutMs })
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** An error naming this process, saying whether it exited, with the end of its stderr. */
  failure(what) {
    const { exitCode, signalCode } = this.child
    const exit = this.running ? '' : ` (it exited: code ${exitCode}, signal ${signalCode})`
    return new Error(`${this.label}: ${what}${exit}\n${this.stderrTail}`)
  }
}

module.exports = { LineProcess, REPLY_MS }
