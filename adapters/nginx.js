'use strict'
// nginx through a file of its own and a graceful reload (tested with 1.22).
// nginx has no runtime API in its free version, so the adapter writes the
// upstream block to a file that nginx.conf includes in its http block:
//
//   http {
//     include /etc/nginx/conf.d/*.conf;   # Debian's default, which takes handover.conf
//     server { listen 80; location / { proxy_pass http://app; } }
//   }
//
// The file holds `upstream app { … }` and a tiny server on the confirmation
// address (127.0.0.1:1539 unless told) that answers "<token> <generation>".
// A reload is confirmed in two steps:
// - new workers run the new upstream: that address answers the new token on
//   a new connection (only they can);
// - old workers take no new connection any more. nginx's master starts the
//   new workers, sleeps 100 ms (hard-coded: ngx_msleep(100) in
//   ngx_master_process_cycle), then tells the old ones to quit, and until
//   then both accept. An old worker that quits closes its listening sockets,
//   then its idle connections, so the adapter keeps one idle keep-alive
//   connection to an old worker across the reload and waits for nginx to
//   close it. Where the running config has no confirmation server yet (the
//   first apply over a user's file), it waits out those 100 ms plus a margin.
//
// Draining servers are left out: on a reload, old workers finish their
// in-flight requests while new workers route to the new list. An upstream
// with no server at all gets `server 127.0.0.1:9 down;`, which nginx accepts
// (and answers 502), where it refuses an empty upstream block.

const { spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { proxyError, routable, checkTable, endpoint, hostPort } = require('./common')

const DEFAULT_FILE = '/etc/nginx/conf.d/handover.conf'
const DEFAULT_CONFIRM = '127.0.0.1:1539'
const CONFIRM_PATH = '/handover-generation'
const TIMEOUT_MS = 5000
const MASTER_PAUSE_MS = 100 + 50 // nginx's pause before it signals old workers, and a margin

class NginxAdapter {
  constructor(options = {}) {
    const env = process.env
    this.file = path.resolve(String(options.file || env.HANDOVER_NGINX_UPSTREAM_FILE || DEFAULT_FILE))
    this.upstream = String(options.upstream || env.HANDOVER_NGINX_UPSTREAM || 'app')
    if (!/^[A-Za-z0-9_.-]+$/.test(this.upstream)) throw proxyError(`nginx upstream name ${JSON.stringify(this.upstream)}: use letters, digits, _ . -`)
    this.reload = options.reload || env.HANDOVER_NGINX_RELOAD || 'nginx -s reload'
    this.timeoutMs = options.timeoutMs || TIMEOUT_MS
    const confirm = String(options.confirmPort || env.HANDOVER_NGINX_CONFIRM_PORT || DEFAULT_CONFIRM)
    const parsed = /^\d+$/.test(confirm) ? { host: '127.0.0.1', port: Number(confirm) } : hostPort(confirm)
    if (!parsed) throw proxyError(`nginx confirmPort ${JSON.stringify(confirm)}: give a port or host:port`)
    this.confirmAt = parsed
    this.listen = parsed.host.includes(':') ? `[${parsed.host}]:${parsed.port}` : `${parsed.host}:${parsed.port}`
    this.last = Promise.resolve()
  }

  describe() {
    return `nginx upstream ${this.upstream} in ${this.file}, reloaded with \`${[].concat(this.reload).join(' ')}\`, confirmed at http://${this.listen}${CONFIRM_PATH}`
  }

  apply(table) {
    // One change at a time: two writers of the file would race.
    const run = this.last.then(() => this.applyNow(table))
    this.last = run.catch(() => {})
    return run
  }

  async applyNow(table) {
    checkTable(table)
    const upstream = this.upstreamBlock(table)
    // The token names the upstream's content, so that a table change nginx
    // does not see (a drained server removed) costs no reload.
    const token = crypto.createHash('sha256').update(upstream).digest('hex').slice(0, 16)
    const existing = readOrNull(this.file)
    const written = existing && answerIn(existing)
    if (existing && existing.startsWith(HEADER + upstream) && written && written.startsWith(token + ' ')) {
      const answer = await this.ask().catch(() => null)
      if (answer === written) return // file and workers already say so: one GET
    }
    const answer = `${token} ${Number(table.generation) || 0}`
    const deadline = Date.now() + this.timeoutMs
    const old = await this.holdOldWorker()
    try {
      this.write(this.fileText(upstream, answer))
      await this.runReload()
      await this.waitFor(answer, deadline)
      if (old) await this.waitForClose(old, deadline)
      else await new Promise((r) => setTimeout(r, MASTER_PAUSE_MS))
    } finally {
      if (old) old.destroy()
    }
  }

  async close() {
    await this.last
  }

  upstreamBlock(table) {
    const servers = routable(table).map((s) => `    server ${endpoint(s)};\n`)
    if (servers.length === 0) servers.push('    server 127.0.0.1:9 down; # no server: nginx refuses an empty upstream\n')
    return `upstream ${this.upstream} {\n${servers.join('')}}\n`
  }

  fileText(upstream, answer) {
    return (
      HEADER +
      upstream +
      // keepalive_timeout of its own: the idle connection held across a reload must outlive it.
      `server {\n    listen ${this.listen};\n    access_log off;\n    keepalive_timeout 60s;\n` +
      `    location = ${CONFIRM_PATH} { return 200 "${answer}"; }\n}\n`
    )
  }

  /** Temp file in the same folder, then rename: nginx never reads half a file. */
  write(text) {
    const dir = path.dirname(this.file)
    // A leading dot and no .conf ending: an `include …/*.conf` glob never picks it up.
    const temp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.tmp`)
    try {
      fs.writeFileSync(temp, text)
      fs.renameSync(temp, this.file)
    } catch (e) {
      try {
        fs.unlinkSync(temp)
      } catch {}
      throw proxyError(`cannot write nginx's upstream file ${this.file}: ${e.message}; the router needs write access to ${dir}`, e)
    }
  }

  runReload() {
    const command = this.reload
    let file, args
    if (Array.isArray(command)) [file, ...args] = command
    else if (/[|&;<>()$`\\"'*?~{}]/.test(command)) [file, args] = ['sh', ['-c', command]] // shell syntax: let a shell read it
    else [file, ...args] = command.trim().split(/\s+/)
    const shown = [].concat(command).join(' ')
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      child.on('error', (e) => reject(proxyError(`cannot run nginx's reload command \`${shown}\`: ${e.message}; set the reload option (HANDOVER_NGINX_RELOAD)`, e)))
      child.on('close', (code, signal) => {
        if (code === 0) return resolve()
        reject(proxyError(`nginx's reload command \`${shown}\` failed (${signal || `exit ${code}`}): ${err.trim().slice(-500)}; is nginx running, and is the command right for it (HANDOVER_NGINX_RELOAD)?`))
      })
    })
  }

  /**
   * An idle keep-alive connection to a worker of the running config, or null
   * when its confirmation server does not answer (none yet, nginx down).
   */
  holdOldWorker() {
    return new Promise((resolve) => {
      const socket = net.connect(this.confirmAt.port, this.confirmAt.host)
      const give = (value) => {
        clearTimeout(timer)
        socket.removeAllListeners('data')
        if (!value) socket.destroy()
        resolve(value)
      }
      const timer = setTimeout(() => give(null), 1000)
      socket.on('error', () => give(null))
      socket.on('close', () => give(null))
      // Its answer has come (one small write): the connection is idle now.
      socket.once('data', (d) => give(/^HTTP\/1\.1 200 /.test(d.toString('latin1')) ? socket : null))
      socket.write(`GET ${CONFIRM_PATH} HTTP/1.1\r\nHost: ${this.listen}\r\n\r\n`)
    })
  }

  /** Resolves when nginx closes the held connection: that old worker quit, its listening sockets first. */
  waitForClose(socket, deadline) {
    return new Promise((resolve, reject) => {
      if (socket.destroyed || socket.readableEnded) return resolve()
      const timer = setTimeout(() => {
        reject(proxyError(`nginx ran the new config but its old workers still accept connections after ${this.timeoutMs} ms; is its master process stuck?`))
      }, Math.max(0, deadline - Date.now()))
      const done = () => {
        clearTimeout(timer)
        resolve()
      }
      socket.on('error', done)
      socket.on('end', done)
      socket.on('close', done)
      socket.resume()
    })
  }

  /** Asks the confirmation address until it answers `answer`, or rejects at `deadline`. */
  async waitFor(answer, deadline = Date.now() + this.timeoutMs) {
    let last = 'no answer'
    for (;;) {
      try {
        const got = await this.ask()
        if (got === answer) return
        last = `"${got}"`
      } catch (e) {
        last = e.message
      }
      if (Date.now() > deadline) {
        throw proxyError(
          `nginx did not load ${this.file} within ${this.timeoutMs} ms: http://${this.listen}${CONFIRM_PATH} answered ${last}, not "${answer}"; ` +
            `does \`nginx -t\` pass, and does nginx.conf include ${this.file} in its http block?`,
        )
      }
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** One GET on a new connection (a kept-alive one could still reach an old worker). */
  ask() {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: this.confirmAt.host, port: this.confirmAt.port, path: CONFIRM_PATH, agent: false, headers: { Connection: 'close' } })
      req.setTimeout(1000, () => req.destroy(new Error('no answer within 1000 ms')))
      req.on('error', reject)
      req.on('response', (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}`))))
      })
    })
  }
}

const HEADER = '# Written by handover (adapters/nginx.js) on every change: edits here are lost.\n'

function readOrNull(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** The "<token> <generation>" a file makes nginx answer, or null. */
function answerIn(text) {
  const m = /return 200 "([0-9a-f]{16} \d+)";/.exec(text)
  return m ? m[1] : null
}

module.exports = { NginxAdapter }
