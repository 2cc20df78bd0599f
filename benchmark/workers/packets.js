'use strict'
// Handover packets (SPEC §3, version 1) for the flood rows: the same kinds
// benchmark/flooder.c sends, for the Node fallback flooder, plus the one
// younger announcement that checks a peer still hands over.

const POOL = 256
const MAX_LEN = 64

/** 0x01, then `startedAtMs` as int64 big-endian: what every peer understands. */
function announcement(startedAtMs) {
  const packet = Buffer.alloc(9)
  packet[0] = 0x01
  packet.writeBigInt64BE(BigInt(startedAtMs), 1)
  return packet
}

function olderPool(olderThanMs) {
  return Array.from({ length: POOL }, (_, i) => announcement(olderThanMs - 1 - i))
}

/** Never a valid announcement: a wrong version byte, or version 1 cut short of its timestamp. */
function malformedPool() {
  return Array.from({ length: POOL }, (_, i) => {
    if (i % 2 === 1) {
      const packet = randomBytes(i % 9)
      if (packet.length) packet[0] = 0x01
      return packet
    }
    const packet = randomBytes(1 + ((i * 37) % MAX_LEN))
    if (packet[0] === 0x01) packet[0] = 0x02
    return packet
  })
}

function randomBytes(length) {
  const packet = Buffer.alloc(length)
  for (let i = 0; i < length; i++) packet[i] = Math.floor(Math.random() * 256)
  return packet
}

function pool(kind, olderThanMs) {
  return kind === 'older' ? olderPool(olderThanMs) : malformedPool()
}

module.exports = { announcement, pool }
