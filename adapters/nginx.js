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
// After the reload the adapter asks that address until the answer is the new
// one: only new workers, which run the new upstream, can give it.
//
// Draining servers are left out: on a reload, old workers finish their
// in-flight requests while new workers route to the new list. An upstream
// with no server at all gets `server 127.0.0.1:9 down;`, which nginx accepts
// (and answers 502), where it refuses an empty upstream block.

const { spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { proxyError, routable, checkTable, endpoint, hostPort } = require('./common')

const DEFAULT_FILE = '/etc/nginx/conf.d/handover.conf'
const DEFAULT_CONFIRM = '127.0.0.1:1539'
const CONFIRM_PATH = '/handover-generation'
const TIMEOUT_MS = 5000

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
    this.write(this.fileText(upstream, answer))
    await this.runReload()
    await this.waitFor(answer)
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
      `server {\n    listen ${this.listen};\n    access_log off;\n` +
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

  /** Asks the confirmation address until it answers `answer`, or rejects after timeoutMs. */
  async waitFor(answer) {
    const deadline = Date.now() + this.timeoutMs
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
