'use strict'
// Forward compatibility of the announcement: a later version may append
// fields of types this one does not know, making packets of any length up to
// the largest UDP datagram. A listening peer must take them whole, skip the
// unknown fields and hand over, and describePacket must say the same as the
// listener. Layout: docs/PROTOCOL.md. Ports 24600–24619.

const path = require('node:path')
const { HandoverPeer, describePacket } = require('..')
const { loopbackOptions, sendRaw, waitFor, tempDir, extensionField, extendedAnnouncement } = require('../test-support/loopback')

/** The largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65_507
const UNKNOWN = 0x20

let nextPort = 24600
const open = []
afterEach(() => {
  while (open.length) open.pop().close()
})

function listeningPeer(startedAt) {
  const port = nextPort++
  const completePath = path.join(tempDir(), 'handover-complete')
  const peer = new HandoverPeer(startedAt, undefined, loopbackOptions(port, { handoverCompletePath: completePath }))
  open.push(peer)
  peer.startListening(() => {})
  return { peer, port }
}

/** Unknown fields of up to 255 bytes each, filling the packet to exactly `length` bytes. */
function padding(length, used) {
  const fields = []
  let left = length - used
  while (left > 0) {
    const size = Math.min(255, left - 2)
    fields.push(extensionField(UNKNOWN, Buffer.alloc(size, fields.length)))
    left -= size + 2
  }
  return fields
}

const instance = extensionField(0x02, Buffer.alloc(8, 0x5a))

test.each([
  ['just over 256 bytes', 300],
  ['about a kilobyte', 1_000],
  ['the largest UDP datagram', MAX_DATAGRAM],
])('an announcement of %s with unknown fields makes the listener hand over', async (_, length) => {
  const { peer, port } = listeningPeer(new Date(1_000))
  const head = extendedAnnouncement(Date.now(), [instance])
  const packet = Buffer.concat([head, ...padding(length, head.length)])
  expect(packet.length).toBe(length)
  expect(describePacket(packet)).toMatchObject({ kind: 'announcement', extended: true, instance: '5a'.repeat(8) })

  await sendRaw(port, packet)
  await waitFor(() => peer.stats().received === 1, 3000, 'the packet')
  expect(peer.stats()).toMatchObject({ accepted: 1, malformed: 0 })
  const report = await peer.handover
  expect(report.heardStartedAt).toBeGreaterThan(1_000)
})

test('the listener and describePacket agree on a long malformed packet: the fault is past byte 256', async () => {
  const { peer, port } = listeningPeer(new Date(1_000))
  const valid = extendedAnnouncement(Date.now(), [instance, ...padding(600, 22)])
  // A service field (known type) claiming more bytes than the packet has left.
  const broken = Buffer.concat([valid, Buffer.from([0x01, 40, 0x61])])
  expect(describePacket(broken)).toMatchObject({ kind: 'malformed', reason: 'extension field 0x01 truncated', length: 603 })

  await sendRaw(port, broken)
  await waitFor(() => peer.stats().received === 1, 3000, 'the packet')
  expect(peer.stats()).toMatchObject({ malformed: 1, accepted: 0 })
  expect(peer.shuttingDown).toBe(false)
})
