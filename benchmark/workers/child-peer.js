'use strict'
// A peer in its own process (test-support/child.js), driven over JSON lines.
// Both implementations log to the same stdout, so only lines that parse as
// one of child.js's reports count.

const path = require('node:path')
const readline = require('node:readline')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { withTimeout } = require('./util.js')

const CHILD = path.join(__dirname, '..', '..', 'test-support', 'child.js')

class ChildPeer {
  /** config as child.js takes it: { impl, startedAt, options, env }. */
  constructor(config) {
    this.process = spawn(process.execPath, [CHILD, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'ignore'] })
    this.exited = once(this.process, 'exit')
    this.reports = []
    this.waiters = []
    readline.createInterface({ input: this.process.stdout }).on('line', (line) => this.receive(line))
  }

  receive(line) {
    let report
    try {
      report = JSON.parse(line)
    } catch {
      return // a log line
    }
    if (!report || typeof report.event !== 'string') return
    const waiter = this.waiters.find((w) => w.event === report.event)
    if (waiter) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1)
      waiter.resolve(report)
    } else {
      this.reports.push(report)
    }
  }

  /** The next report of this kind (already received or still to come). */
  next(event, timeoutMs) {
    const index = this.reports.findIndex((r) => r.event === event)
    if (index >= 0) return Promise.resolve(this.reports.splice(index, 1)[0])
    const waiting = new Promise((resolve) => this.waiters.push({ event, resolve }))
    return withTimeout(waiting, timeoutMs, `child report '${event}'`)
  }

  command(cmd) {
    this.process.stdin.write(JSON.stringify({ cmd }) + '\n')
  }

  async exit() {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL')
    await this.exited
  }
}

module.exports = { ChildPeer }
