'use strict'
// A drop-in must start whatever BALENA_SERVICE_NAME holds (the original never
// reads it): a name longer than the 63-byte scope field is shortened the same
// way by every instance, while the caller's own `serviceName` option over the
// limit is refused. Loopback ports 24640–24649.

const dgram = require('node:dgram')
const { HandoverPeer, describePacket } = require('..')
const { GROUP, loopbackOptions, waitFor } = require('../test-support/loopback')

// 70 and 71 bytes, the same for their first 63.
const LONG = 'billing-reconciliation-worker-for-the-eu-west-region-with-retries-v2'.padEnd(70, 'x')
const LONG_TOO = `${LONG}y`

const open = []
afterEach(() => {
  while (open.length) open.pop().close()
})

/** A peer made while BALENA_SERVICE_NAME is `name`, as the environment is read at construction. */
function peerNamed(name, startedAt, options) {
  const saved = process.env.BALENA_SERVICE_NAME
  process.env.BALENA_SERVICE_NAME = name
  try {
    const peer = new HandoverPeer(startedAt, undefined, options)
    open.push(peer)
    return peer
  } finally {
    if (saved === undefined) delete process.env.BALENA_SERVICE_NAME
    else process.env.BALENA_SERVICE_NAME = saved
  }
}

async function rawListener(port) {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  const packets = []
  socket.on('message', (m) => packets.push(m))
  await new Promise((resolve) => socket.bind(port, resolve))
  socket.addMembership(GROUP, '127.0.0.1')
  open.push({ close: () => socket.close() })
  return packets
}

test('a BALENA_SERVICE_NAME over 63 bytes starts, and announces a shortened scope', async () => {
  const port = 24640
  const packets = await rawListener(port)
  const peer = peerNamed(LONG, new Date(), loopbackOptions(port))
  peer.startBroadcasting()
  await waitFor(() => packets.length > 0, 3000, 'an announcement')
  const { service } = describePacket(packets[0])
  expect(Buffer.byteLength(service)).toBeLessThanOrEqual(63)
  expect(service).toMatch(/^billing-reconciliation-worker-for-the-eu-west-~[0-9a-f]{16}$/)
})

test('instances with the same long name hand over; one whose long name differs past byte 63 does not', async () => {
  const port = 24641
  const old = peerNamed(LONG, new Date(1_000), loopbackOptions(port))
  old.startListening(() => {})
  peerNamed(LONG_TOO, new Date(), loopbackOptions(port)).startBroadcasting()
  await waitFor(() => old.stats().otherService > 0, 3000, 'the other service')
  expect(old.shuttingDown).toBe(false)

  peerNamed(LONG, new Date(), loopbackOptions(port)).startBroadcasting()
  const report = await old.handover
  expect(report.heardStartedAt).toBeGreaterThan(1_000)
})

test('the serviceName option over 63 bytes is still a RangeError: it is the caller\'s own input', () => {
  expect(() => new HandoverPeer(new Date(), undefined, loopbackOptions(24642, { serviceName: LONG }))).toThrow(RangeError)
  expect(() => new HandoverPeer(new Date(), undefined, loopbackOptions(24642, { serviceName: LONG }))).toThrow(/63/)
})
