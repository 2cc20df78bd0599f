'use strict'
// Hand-made handover announcements, byte by byte from the wire format
// (SPEC §3 and our extension after byte 9: "HO", version, then
// type-length-value fields, the MAC last), for forged and malformed traffic.

const crypto = require('node:crypto')

const INT64_MAX = 0x7fffffffffffffffn
const FIELD = { service: 0x01, instance: 0x02, bootClock: 0x03, freshness: 0x04, mac: 0x7f }

/** The 9-byte announcement of the original. */
function plain(startedAtMs) {
  const packet = Buffer.alloc(9)
  packet[0] = 0x01
  packet.writeBigInt64BE(BigInt(startedAtMs), 1)
  return packet
}

function field(type, value) {
  return Buffer.concat([Buffer.from([type, value.length]), value])
}

/** An announcement with our extension: instance id and freshness (what a signed one carries). */
function extended(startedAtMs, { instance = crypto.randomBytes(8), sentAtMs = Date.now(), sequence = 1 } = {}) {
  const freshness = Buffer.alloc(16)
  freshness.writeBigInt64BE(BigInt(sentAtMs), 0)
  freshness.writeBigUInt64BE(BigInt(sequence), 8)
  return Buffer.concat([
    plain(startedAtMs),
    Buffer.from('HO\x01', 'latin1'),
    field(FIELD.instance, instance),
    field(FIELD.freshness, freshness),
  ])
}

/** Appends the MAC field: HMAC-SHA256 keyed by `secret` over every byte before it. */
function signed(packet, secret) {
  return Buffer.concat([packet, field(FIELD.mac, crypto.createHmac('sha256', secret).update(packet).digest())])
}

/** Appends a MAC field of the right shape that no key produced. */
function withBogusMac(packet) {
  return Buffer.concat([packet, field(FIELD.mac, crypto.randomBytes(32))])
}

module.exports = { INT64_MAX, FIELD, plain, extended, signed, withBogusMac }
