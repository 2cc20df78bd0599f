'use strict'
// HandoverStatus on loopback sockets, and the v2 bytes checked against a
// JS codec written here from the table in SPEC §3. Ports 22100–22199.

const { HandoverStatus, encodeStatusMessage } = require('..')
const { loopbackOptions, sendRaw, captureOn, waitFor, sleep } = require('../test-support/loopback')

let nextPort = 22100
const open = []
afterEach(() => {
  while (open.length) open.pop().close()
})

function status(startedAt, serviceName, addresses, port) {
  const s = new HandoverStatus(startedAt, serviceName, addresses, undefined, loopbackOptions(port))
  open.push(s)
  return s
}

// --- v2 from the spec table: offsets 0 version, 1 ts, 9 name[63], 72 addrs[40], 112 status[8]
function specEncode({ timestamp, serviceName, addresses, status: text }) {
  const b = Buffer.alloc(120)
  b[0] = 0x02
  b.writeBigInt64BE(BigInt(timestamp), 1)
  b.write(serviceName, 9, 63, 'utf8')
  addresses.forEach((a, i) => a.split('.').forEach((octet, j) => (b[72 + 4 * i + j] = Number(octet))))
  b.write(text, 112, 8, 'utf8')
  return b
}

function specDecode(b) {
  const text = (from, to) => {
    const slice = b.subarray(from, to)
    const end = slice.indexOf(0)
    return slice.subarray(0, end === -1 ? slice.length : end).toString('utf8')
  }
  const addresses = []
  for (let at = 72; at < 112 && b[at] !== 0; at += 4) addresses.push([...b.subarray(at, at + 4)].join('.'))
  return { version: b[0], timestamp: b.readBigInt64BE(1), serviceName: text(9, 72), addresses, status: text(112, 120) }
}


test('UP is sent at once with the name, addresses and timestamp, in the spec layout', async () => {
  const port = nextPort++
  const raw = await captureOn(port)
  try {
    const startedAt = new Date(1_700_000_000_000)
    const s = status(startedAt, 'api', ['10.0.0.2', '172.17.0.5'], port)
    const firstAt = Date.now()
    s.startBroadcastingServiceUp()
    await waitFor(() => raw.packets.length >= 1, 3000, 'an UP packet')
    const packet = raw.packets[0]
    expect(packet.length).toBe(120)
    expect(specDecode(packet)).toEqual({
      version: 2,
      timestamp: 1_700_000_000_000n,
      serviceName: 'api',
      addresses: ['10.0.0.2', '172.17.0.5'],
      status: 'UP',
    })
    expect(packet.equals(specEncode({ timestamp: 1_700_000_000_000, serviceName: 'api', addresses: ['10.0.0.2', '172.17.0.5'], status: 'UP' }))).toBe(true)
    // Idempotent: a second call does not send again at once. At most the
    // schedule's own sends (at 0, 0.1, 0.3, 0.7 s …) can have been heard.
    s.startBroadcastingServiceUp()
    await sleep(50)
    const elapsed = Date.now() - firstAt
    const due = [0, 100, 300, 700, 1500, 3100].filter((at) => at <= elapsed).length
    expect(raw.packets.length).toBeLessThanOrEqual(due)
  } finally {
    raw.close()
  }
})

test('the listener hears UP and DOWN (own included), and DOWN repeats about every 100 ms', async () => {
  const port = nextPort++
  const s = status(new Date(1_700_000_000_000), 'worker', ['192.168.1.10'], port)
  const heard = []
  s.startListening(async (m) => heard.push({ ...m, at: Date.now() }))
  s.startBroadcastingServiceUp()
  await waitFor(() => heard.some((m) => m.status === 'UP'), 3000, 'UP')
  expect(heard[0]).toEqual({
    timestamp: 1_700_000_000_000n,
    serviceName: 'worker',
    addresses: ['192.168.1.10'],
    status: 'UP',
    at: expect.any(Number),
  })
  s.startBroadcastingServiceDown()
  await waitFor(() => heard.filter((m) => m.status === 'DOWN').length >= 6, 3000, 'six DOWN packets')
  const downs = heard.filter((m) => m.status === 'DOWN').map((m) => m.at)
  const gaps = downs.slice(1).map((t, i) => t - downs[i])
  const median = gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)]
  expect(median).toBeGreaterThanOrEqual(60)
  expect(median).toBeLessThanOrEqual(200)
})

// handover-lib 0.2.3 runs the two tickers independently: DOWN does not stop
// UP, UP does not stop DOWN. Code tested against it relies on hearing both.
test('DOWN leaves the UP ticker running: UP keeps its schedule, up to the one at 10 s, between DOWNs', async () => {
  const port = nextPort++
  const s = status(new Date(1_700_000_000_000), 'worker', ['192.168.1.10'], port)
  const heard = []
  s.startListening((m) => heard.push({ status: m.status, at: Date.now() }))
  s.startBroadcastingServiceUp()
  await waitFor(() => heard.some((m) => m.status === 'UP'), 3000, 'UP')
  const firstUp = heard.find((m) => m.status === 'UP').at
  s.startBroadcastingServiceDown()
  const tenSeconds = (m) => m.status === 'UP' && m.at - firstUp >= 9_500
  await waitFor(() => heard.some(tenSeconds), 12_000, 'the UP 10 s after the first')
  // UP at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 and 10 s: the quick repeats, then the regular grid.
  const ups = heard.filter((m) => m.status === 'UP')
  expect(ups.length).toBeGreaterThanOrEqual(7)
  expect(ups.filter((m) => m.at - firstUp < 9_500).length).toBeLessThanOrEqual(7)
  const tenth = heard.find(tenSeconds)
  const downsBefore = heard.filter((m) => m.status === 'DOWN' && m.at < tenth.at).length
  expect(downsBefore).toBeGreaterThan(50)
  await waitFor(() => heard.slice(heard.indexOf(tenth)).some((m) => m.status === 'DOWN'), 1000, 'DOWN after that UP')
}, 20_000)

test('UP after DOWN starts UP and leaves DOWN running; UP started before DOWN is not restarted', async () => {
  const port = nextPort++
  const s = status(new Date(), 'worker', [], port)
  const heard = []
  s.startListening((m) => heard.push(m.status))
  s.startBroadcastingServiceDown()
  await waitFor(() => heard.length >= 2, 3000, 'DOWN')
  s.startBroadcastingServiceUp()
  await waitFor(() => heard.includes('UP'), 3000, 'UP, sent at once')
  const upAt = Date.now()
  const afterUp = heard.length
  await waitFor(() => heard.slice(afterUp).filter((status) => status === 'DOWN').length >= 3, 3000, 'DOWN still repeating after UP')
  // UP repeats at 0.1 and 0.3 s; the next is due at 0.7 s.
  await sleep(Math.max(0, 400 - (Date.now() - upAt)))
  const ups = heard.filter((status) => status === 'UP').length
  expect(ups).toBe(3)
  // UP is still running, so this call is a no-op: no UP at once.
  s.startBroadcastingServiceUp()
  await sleep(100)
  expect(heard.filter((status) => status === 'UP')).toHaveLength(ups)
})

test('bytes from a JS encoder written from the spec are decoded by our listener', async () => {
  const port = nextPort++
  const s = status(new Date(), 'listener', [], port)
  const heard = []
  s.startListening((m) => heard.push(m))
  const message = { timestamp: -42, serviceName: 'ünïcode-svc', addresses: ['1.2.3.4', '5.6.7.8', '9.10.11.12'], status: 'DRAINING' }
  await sendRaw(port, specEncode(message))
  await waitFor(() => heard.length === 1, 3000, 'the message')
  expect(heard[0]).toEqual({ ...message, timestamp: -42n })
  expect(encodeStatusMessage(-42, message.serviceName, message.addresses, 'DRAINING').equals(specEncode(message))).toBe(true)
})

test('malformed status packets are dropped and counted; a failing callback does not stop delivery', async () => {
  const port = nextPort++
  const s = status(new Date(), 'listener', [], port)
  const heard = []
  s.startListening((m) => {
    heard.push(m)
    if (heard.length === 1) throw new Error('callback failure is logged, not fatal')
    return Promise.reject(new Error('rejections too'))
  })
  await sendRaw(port, [Buffer.from([2, 1, 2]), Buffer.alloc(119, 2), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 1])])
  const good = specEncode({ timestamp: 1, serviceName: 'x', addresses: [], status: 'UP' })
  await sendRaw(port, [good, good])
  await waitFor(() => heard.length === 2, 3000, 'two messages')
  expect(s.stats()).toMatchObject({ malformed: 3, accepted: 2, received: 5 })
})

test('close() stops the tickers', async () => {
  const port = nextPort++
  const raw = await captureOn(port)
  try {
    const s = status(new Date(), 'api', [], port)
    s.startBroadcastingServiceDown()
    await waitFor(() => raw.packets.length >= 2, 3000, 'DOWN packets')
    s.close()
    await sleep(150)
    const count = raw.packets.length
    await sleep(300)
    expect(raw.packets.length).toBe(count)
    expect(() => s.startBroadcastingServiceUp()).toThrow(/closed/)
  } finally {
    raw.close()
  }
})

test('exposes the original members', () => {
  const startedAt = new Date()
  const s = status(startedAt, 'api', ['10.0.0.1'], nextPort++)
  expect(s.startedAt).toBe(startedAt)
  expect(s.startedAt instanceof Date).toBe(true)
  expect(s.networkPort).toBe(nextPort - 1)
  expect(s.statusBroadcastAddress).toBe('239.192.16.16')
})
