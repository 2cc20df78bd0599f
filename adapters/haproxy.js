'use strict'
// HAProxy through its Runtime API (the stats socket), with no reload.
//
// The backend holds a fixed set of slots; the adapter points them at the
// table's servers and sets their state. haproxy.cfg (tested with 2.6):
//
//   global
//     stats socket /run/haproxy/admin.sock mode 660 level admin
//     # or over TCP, local only: stats socket ipv4@127.0.0.1:9999 level admin
//   backend app
//     server-template slot 1-10 127.0.0.1:9 disabled
//
// `disabled` starts every slot in maintenance, so nothing is routed before
// the first apply. Every server of the backend counts as a slot: keep other
// servers out of it. Add `check` (and its timing) to the template line to
// have HAProxy health-check the instances too; the adapter sets and confirms
// the administrative state, which checks do not change.
//
// One command per connection: 2.6 accepts several separated by `;`, but
// answers them with blank-line-separated output in which an empty answer
// (`set server … state` succeeded) cannot be told apart, so an error could
// not be pinned on its command.

const net = require('node:net')
const { proxyError, routable, checkTable, hostPort } = require('./common')

const DEFAULT_SOCKET = '/run/haproxy/admin.sock' // Debian's haproxy.cfg has it at level admin
const TIMEOUT_MS = 2000

// srv_admin_state bits (HAProxy's enum srv_admin): any maintenance flag, any drain flag.
const ADMF_MAINT = 0x23
const ADMF_DRAIN = 0x18

class HAProxyAdapter {
  constructor(options = {}) {
    const env = process.env
    this.socket = String(options.socket || env.HANDOVER_HAPROXY_SOCKET || DEFAULT_SOCKET)
    this.backend = String(options.backend || env.HANDOVER_HAPROXY_BACKEND || 'app')
    this.timeoutMs = options.timeoutMs || TIMEOUT_MS
    // A path, unless it is host:port (a TCP stats socket).
    const tcp = this.socket.startsWith('/') ? null : hostPort(this.socket)
    this.connectOptions = tcp ? { host: tcp.host, port: tcp.port } : { path: this.socket }
    this.last = Promise.resolve()
  }

  describe() {
    return `HAProxy at ${this.socket}, backend ${this.backend}`
  }

  apply(table) {
    // One change at a time: a reconcile must not interleave with a change.
    const run = this.last.then(() => this.applyNow(table))
    this.last = run.catch(() => {})
    return run
  }

  async applyNow(table) {
    checkTable(table)
    const slots = await this.slots()
    const plan = this.plan(table, slots)
    if (plan.commands.length === 0) return // already as the table says: one read, nothing else
    for (const command of plan.commands) {
      const answer = (await this.command(command)).trim()
      // `addr` answers "IP changed …" or "no need to change …", `state` answers nothing.
      if (answer && !/^(IP changed|no need to change|port changed)/i.test(answer)) {
        throw proxyError(`HAProxy refused \`${command}\`: ${answer}`)
      }
    }
    this.confirm(plan, await this.slots())
  }

  async close() {
    await this.last
  }

  /** Which slot each server goes to, and the commands that get it there: ready first, then drain, then maint. */
  plan(table, slots) {
    const take = new Set(routable(table))
    const wanted = table.servers.map((s) => ({ server: s, state: take.has(s) ? 'ready' : 'drain', slot: null }))
    if (wanted.length > slots.length) {
      throw proxyError(
        `HAProxy backend ${this.backend} has ${slots.length} slots but the table has ${wanted.length} servers; ` +
          `raise the count in its \`server-template\` line (e.g. \`server-template slot 1-${Math.max(10, wanted.length * 2)} 127.0.0.1:9 disabled\`)`,
      )
    }
    const used = new Set()
    // A server keeps the slot that already points at it: no address change under live traffic.
    for (const w of wanted) {
      const slot = slots.find((s) => !used.has(s) && s.addr === w.server.address && s.port === w.server.port)
      if (slot) {
        w.slot = slot
        used.add(slot)
      }
    }
    // The others take free slots, those in maintenance first (they carry no traffic).
    const free = slots.filter((s) => !used.has(s)).sort((a, b) => (b.state === 'maint') - (a.state === 'maint'))
    for (const w of wanted) {
      if (w.slot) continue
      w.slot = free.shift()
      used.add(w.slot)
    }
    const commands = []
    const target = (slot) => `${this.backend}/${slot.name}`
    for (const state of ['ready', 'drain']) {
      for (const w of wanted.filter((x) => x.state === state)) {
        if (w.slot.addr !== w.server.address || w.slot.port !== w.server.port) {
          commands.push(`set server ${target(w.slot)} addr ${w.server.address} port ${w.server.port}`)
        }
        if (w.slot.state !== state) commands.push(`set server ${target(w.slot)} state ${state}`)
      }
    }
    const unused = slots.filter((s) => !used.has(s))
    for (const slot of unused) if (slot.state !== 'maint') commands.push(`set server ${target(slot)} state maint`)
    return { wanted, unused, commands }
  }

  /** Rejects unless HAProxy's own state now says what the plan wanted. */
  confirm(plan, slots) {
    const byName = new Map(slots.map((s) => [s.name, s]))
    const wrong = []
    for (const w of plan.wanted) {
      const now = byName.get(w.slot.name)
      if (!now || now.addr !== w.server.address || now.port !== w.server.port || now.state !== w.state) {
        wrong.push(`${w.slot.name} is ${now ? `${now.addr}:${now.port} ${now.state}` : 'gone'}, expected ${w.server.address}:${w.server.port} ${w.state}`)
      }
    }
    for (const slot of plan.unused) {
      const now = byName.get(slot.name)
      if (now && now.state !== 'maint') wrong.push(`${slot.name} is ${now.state}, expected maint`)
    }
    if (wrong.length) throw proxyError(`HAProxy backend ${this.backend} did not take the change: ${wrong.join('; ')}`)
  }

  /** The backend's servers from `show servers state`: name, addr, port, and admin state as ready|drain|maint. */
  async slots() {
    const answer = await this.command(`show servers state ${this.backend}`)
    const lines = answer.split('\n').filter((l) => l.trim())
    const header = lines.find((l) => l.startsWith('# '))
    if (!header) {
      if (/can't find backend/i.test(answer)) {
        throw proxyError(`HAProxy has no backend ${this.backend}; set the backend option (HANDOVER_HAPROXY_BACKEND) to the one that holds the server-template`)
      }
      throw proxyError(`HAProxy answered \`show servers state ${this.backend}\` with ${JSON.stringify(answer.trim().slice(0, 200))}`)
    }
    const columns = header.slice(2).trim().split(/\s+/)
    const at = (name) => columns.indexOf(name)
    const [name, addr, port, admin] = [at('srv_name'), at('srv_addr'), at('srv_port'), at('srv_admin_state')]
    const slots = lines
      .filter((l) => !l.startsWith('#') && l.includes(' '))
      .map((l) => l.trim().split(/\s+/))
      .map((f) => ({ name: f[name], addr: f[addr], port: Number(f[port]), state: adminState(Number(f[admin])) }))
    if (slots.length === 0) {
      throw proxyError(`HAProxy backend ${this.backend} has no servers; add \`server-template slot 1-10 127.0.0.1:9 disabled\` to it`)
    }
    return slots
  }

  /** Sends one command on a connection of its own; resolves with HAProxy's whole answer. */
  command(command) {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.connectOptions)
      let answer = ''
      socket.setEncoding('utf8')
      socket.setTimeout(this.timeoutMs, () => socket.destroy(new Error(`no answer within ${this.timeoutMs} ms`)))
      socket.on('data', (d) => (answer += d))
      socket.on('error', (e) => reject(this.unreachable(e)))
      socket.on('close', (hadError) => {
        if (hadError) return
        if (/permission denied/i.test(answer)) {
          return reject(proxyError(`HAProxy's Runtime API at ${this.socket} refused \`${command.split(' ').slice(0, 2).join(' ')}\`: permission denied; give the stats socket \`level admin\``))
        }
        resolve(answer)
      })
      socket.end(command + '\n')
    })
  }

  unreachable(error) {
    const line = this.connectOptions.path
      ? `stats socket ${this.socket} level admin`
      : `stats socket ipv4@${this.socket} level admin`
    return proxyError(`cannot reach HAProxy's Runtime API at ${this.socket}: ${error.message}; is HAProxy running, with \`${line}\` in haproxy.cfg's global section?`, error)
  }
}

function adminState(bits) {
  if (bits & ADMF_MAINT) return 'maint'
  if (bits & ADMF_DRAIN) return 'drain'
  return 'ready'
}

module.exports = { HAProxyAdapter }
