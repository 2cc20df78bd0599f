'use strict'
// Drives peers (ours or the JS original) running as test-support/child.js in
// the namespaces of a Topology, one process per instance, as on a device.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { LineProcess } = require('../../../test-support/line-process')

const REPOSITORY = path.join(__dirname, '..', '..', '..')
const CHILD = path.join(REPOSITORY, 'test-support', 'child.js')
const SENDER = path.join(__dirname, 'packet-sender.js')
/** Generous on a loaded 2-core machine: starting node and the original's logger takes a while. */
const STARTUP_MS = 15_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` until it returns something truthy. */
async function eventually(probe, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

/** A folder of the test's own, standing in for a container's /tmp/balena. */
function scratchFolder(label) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `handover-scenario-${label}-`))
}

/** One instance of a service: child.js in a namespace. */
class PeerProcess extends LineProcess {
  /**
   * `config` is child.js's ({ impl, startedAt, options, env, … }).
   * `wrap` prefixes the node command line (an `unshare …` for a time or mount namespace).
   */
  static async start(topology, role, label, config, wrap = []) {
    const line = { impl: 'ours', reportHandover: true, exitWithParent: true, ...config }
    const args = [...wrap, process.execPath, CHILD, JSON.stringify(line)]
    const child = topology.spawn(role, args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
    const peer = new PeerProcess(label, child)
    peer.startedAt = line.startedAt
    peer.pid = (await peer.next('ready', { timeoutMs: STARTUP_MS })).pid
    return peer
  }

  /**
   * Waits until the multicast group is joined in this peer's network
   * namespace (its /proc/net/igmp lists it). The original reports
   * 'listening' before its socket is bound and has joined: an announcement
   * sent in between is lost, and its next one comes 10 s later.
   */
  async joined(group = '239.192.16.16') {
    const octets = group.split('.').map(Number)
    const hex = (bytes) => bytes.map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('')
    // The kernel prints the group as a 32-bit number in host byte order.
    const forms = [hex([...octets].reverse()), hex(octets)]
    await eventually(() => {
      const table = fs.readFileSync(`/proc/${this.pid}/net/igmp`, 'utf8')
      return forms.some((form) => table.includes(form))
    }, `${this.label} joining ${group}`)
  }

  async listen() {
    await this.ask({ cmd: 'listen' }, 'listening')
  }

  async broadcast() {
    await this.ask({ cmd: 'broadcast' }, 'broadcasting')
  }

  async stats() {
    return this.ask({ cmd: 'stats' }, 'stats')
  }

  async shuttingDown() {
    return (await this.ask({ cmd: 'state' }, 'state')).shuttingDown
  }

  /**
   * Waits until this peer of ours has heard at least `count` packets that
   * are not its own, or has begun to shut down (its listener then stops:
   * the caller's assertions say what went wrong). Resolves with its stats.
   */
  async hearsOthers(count, what = `${this.label} hearing ${count} packets of others`) {
    return eventually(async () => {
      const stats = await this.stats()
      return (stats.received - stats.own >= count || (await this.shuttingDown())) && stats
    }, what)
  }

  /** The handover report of ours: the callback ran and the complete file was written (or not). */
  handedOver(timeoutMs = 15_000) {
    return this.next('handover', { timeoutMs })
  }

  callbackRan(timeoutMs = 15_000) {
    return this.next('callback', { timeoutMs })
  }
}

/** Raw datagrams from a namespace: forged, malformed or hand-made announcements. */
class PacketSender extends LineProcess {
  static async start(topology, role, label = 'sender') {
    const child = topology.spawn(role, process.execPath, [SENDER], { stdio: ['pipe', 'pipe', 'pipe'] })
    const sender = new PacketSender(label, child)
    await sender.next('ready', { timeoutMs: STARTUP_MS })
    return sender
  }

  /** Sends every packet (Buffers) to `address:port`; resolves once all left the socket. */
  async send(packets, { address = '239.192.16.16', port = 1536 } = {}) {
    const message = { address, port, packets: packets.map((p) => p.toString('hex')) }
    return this.ask(message, 'sent', 30_000)
  }
}

/**
 * Wraps child.js for the original: it always writes
 * /tmp/balena/handover-complete, so it gets a private /tmp (a mount
 * namespace) backed by `folder`; the file lands in `folder`/balena.
 */
function privateTmp(folder) {
  fs.mkdirSync(path.join(folder, 'balena'), { recursive: true })
  // The repository may itself live under /tmp (CI clones anywhere): keep it
  // reachable at its own path on top of the private /tmp. (--rbind: a
  // mount namespace made by a user namespace may not bind a folder alone
  // when mounts lie below it.) Run by Topology.spawn, as root of the
  // namespaces, so this works without root too.
  const script =
    'mount --rbind "$1" /mnt && mount --bind "$0" /tmp && mkdir -p "$1" && mount --rbind /mnt "$1" && ' +
    'shift && exec "$@"'
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, folder, REPOSITORY]
}

/** Wraps child.js so its CLOCK_BOOTTIME runs `seconds` ahead (a time namespace; also without root, see above). */
function bootClockAhead(seconds) {
  return ['unshare', '--time', '--boottime', String(seconds)]
}

module.exports = { PeerProcess, PacketSender, privateTmp, bootClockAhead, eventually, scratchFolder, sleep }
