'use strict'
// Drives the processes of a router scenario (router-roles.js) in the
// namespaces of a Topology, and forges status and router messages byte by
// byte from docs/PROTOCOL.md ("Status message", "Signed status messages",
// "Router messages").

const crypto = require('node:crypto')
const path = require('node:path')
const { LineProcess } = require('../../../test-support/line-process')
const { eventually } = require('./peer-process')

const ROLES = path.join(__dirname, 'router-roles.js')
const STARTUP_MS = 15_000

function start(Kind, topology, role, label, config) {
  const child = topology.spawn(role, process.execPath, [ROLES, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] })
  const process_ = new Kind(label, child)
  return process_.next('ready', { timeoutMs: STARTUP_MS }).then((ready) => {
    process_.ready = ready
    return process_
  })
}

/** A HandoverRouter with the recording adapter, in the namespace of `role`. */
class RouterProcess extends LineProcess {
  static start(topology, role, { options, env, drainDelayMs } = {}) {
    return start(RouterProcess, topology, role, `router in ${role}`, { role: 'router', options, env, drainDelayMs })
  }

  get id() {
    return this.ready.id
  }

  get subnets() {
    return this.ready.subnets
  }

  /** Every table handed to the adapter so far. */
  tables() {
    return this.reports.filter((r) => r.event === 'apply').map((r) => r.table)
  }

  /** Every address that ever reached the adapter. */
  addresses() {
    return new Set(this.tables().flatMap((t) => t.servers.map((s) => s.address)))
  }

  /** The last table, as `address state` lines. */
  servers() {
    const tables = this.tables()
    const last = tables[tables.length - 1]
    return last ? last.servers.map((s) => `${s.address} ${s.state}`).sort() : []
  }

  /** Waits until the last table handed to the adapter satisfies `probe(servers)`. */
  routes(probe, what, timeoutMs = 10_000) {
    return eventually(() => probe(this.servers()), `${this.label}: ${what} (last table: ${this.servers().join(', ')})`, timeoutMs)
  }

  stats() {
    return this.ask({ cmd: 'stats' }, 'stats')
  }
}

/** A HandoverStatus (an instance of the service) in the namespace of `role`. */
class InstanceProcess extends LineProcess {
  static start(topology, role, { startedAt, service = 'api', addresses, options, env }) {
    const config = { role: 'instance', label: role, startedAt, service, addresses, options, env }
    return start(InstanceProcess, topology, role, `instance ${role}`, config).then((instance) => {
      instance.startedAt = startedAt
      return instance
    })
  }

  up() {
    return this.ask({ cmd: 'up' }, 'up')
  }

  /** Starts the drain; resolves once it is under way (the 'drained' report comes later). */
  drain(timeoutMs) {
    return this.ask({ cmd: 'drain', timeoutMs }, 'draining')
  }

  drained(timeoutMs = 15_000) {
    return this.next('drained', { timeoutMs })
  }

  logs() {
    return this.reports.filter((r) => r.event === 'log').map((r) => r.message)
  }
}

/** Raw sockets joined to the group in the namespace of `role`: what an attacker there hears. */
class CaptureProcess extends LineProcess {
  static start(topology, role, address, ports = [1537, 1538]) {
    return start(CaptureProcess, topology, role, `capture in ${role}`, { role: 'capture', interface: address, ports })
  }

  packets(port) {
    return this.reports.filter((r) => r.event === 'packet' && r.port === port).map((r) => Buffer.from(r.hex, 'hex'))
  }

  /** The first packet on `port` (now or when it comes) that satisfies `probe`. */
  heard(port, probe, what) {
    return eventually(() => this.packets(port).find(probe), `${this.label}: ${what}`)
  }
}

// ---- forging ------------------------------------------------------------

const FIELD = { instance: 0x02, freshness: 0x04, name: 0x05, mac: 0x7f }
const EXTENSION = Buffer.from('HO\x01', 'latin1')

function field(type, value) {
  return Buffer.concat([Buffer.from([type, value.length]), value])
}

function freshness(sentAtMs = Date.now(), sequence = 1) {
  const value = Buffer.alloc(16)
  value.writeBigInt64BE(BigInt(sentAtMs), 0)
  value.writeBigUInt64BE(BigInt(sequence), 8)
  return field(FIELD.freshness, value)
}

/** Appends the MAC field: HMAC-SHA256 keyed by `secret` over every byte before it. */
function sign(packet, secret) {
  return Buffer.concat([packet, field(FIELD.mac, crypto.createHmac('sha256', secret).update(packet).digest())])
}

function padded(text, length) {
  const bytes = Buffer.alloc(length)
  bytes.write(text, 'utf8')
  return bytes
}

/** A 120-byte v2 status message, as handover-lib sends it (nothing after byte 120). */
function statusMessage({ timestamp, service = 'api', addresses, status = 'UP' }) {
  const packet = Buffer.alloc(120)
  packet[0] = 0x02
  packet.writeBigInt64BE(BigInt(timestamp), 1)
  padded(service, 63).copy(packet, 9)
  addresses.forEach((address, i) => Buffer.from(address.split('.').map(Number)).copy(packet, 72 + 4 * i))
  padded(status, 8).copy(packet, 112)
  return packet
}

/** A status message with our extension, signed with `secret` (the wrong one, for a forgery). */
function signedStatusMessage(message, secret, { instance = crypto.randomBytes(8), sequence = 1 } = {}) {
  const body = Buffer.concat([statusMessage(message), EXTENSION, field(FIELD.instance, instance), freshness(Date.now(), sequence)])
  return sign(body, secret)
}

/** The addresses a status message names (bytes 72–111). */
function addressesOf(packet) {
  const addresses = []
  for (let at = 72; at < 112 && packet[at] !== 0; at += 4) addresses.push([...packet.subarray(at, at + 4)].join('.'))
  return addresses
}

/** A router message (kind 1 HELLO, 2 DRAINED): 81 bytes, then the extension; signed only when `secret` is given. */
function routerMessage({ kind, routerId, timestamp = 0, service = 'api', name = 'edge', secret }) {
  const id = Buffer.from(routerId, 'hex')
  const head = Buffer.alloc(81)
  head[0] = 0x03
  head[1] = kind
  id.copy(head, 2)
  head.writeBigInt64BE(BigInt(timestamp), 10)
  padded(service, 63).copy(head, 18)
  const parts = [head, EXTENSION, field(FIELD.instance, id), field(FIELD.name, Buffer.from(name))]
  if (secret === undefined) return Buffer.concat(parts)
  return sign(Buffer.concat([...parts, freshness(Date.now(), Date.now())]), secret)
}

const ROUTER_KIND = { hello: 0x01, drained: 0x02 }

module.exports = {
  RouterProcess,
  InstanceProcess,
  CaptureProcess,
  statusMessage,
  signedStatusMessage,
  addressesOf,
  routerMessage,
  ROUTER_KIND,
}
