'use strict'
// HandoverRouter and HandoverStatus.drain() on loopback sockets, with an
// adapter written here that records every table and confirms when told to.
// Ports 48450–48479: each test takes a status port and the router port
// after it.

const { execFile } = require('node:child_process')
const dgram = require('node:dgram')
const { HandoverRouter, HandoverStatus, encodeStatusMessage } = require('..')
const { GROUP, sendRaw, captureOn, waitFor, sleep } = require('../test-support/loopback')

let nextPort = 48450
function ports() {
  const status = nextPort
  nextPort += 2
  if (nextPort > 48480) throw new Error('router.test.js ports are 48450–48479')
  return { status, router: status + 1 }
}

const open = []
afterEach(async () => {
  while (open.length) await open.pop().close()
})

/** Instance-side options: every packet on 127.0.0.1. */
function statusOptions(p, extra = {}) {
  return { port: p.status, routerPort: p.router, networkMode: 'host', networkInterface: '127.0.0.1', logLevel: 'error', ...extra }
}

function instance(startedAtMs, address, p, extra = {}, service = 'api') {
  const s = new HandoverStatus(new Date(startedAtMs), service, [address], { id: `v${startedAtMs}` }, statusOptions(p, extra))
  open.push(s)
  return s
}

/** An adapter that records tables; `hold()` makes applies wait until `release()`, `fail()` makes them reject. */
function recordingAdapter() {
  const adapter = {
    tables: [],
    held: null,
    failing: null,
    async apply(table) {
      adapter.tables.push(table)
      if (adapter.failing) throw new Error(adapter.failing)
      if (adapter.held) await adapter.held.promise
    },
    hold() {
      let release
      const promise = new Promise((resolve) => (release = resolve))
      adapter.held = { promise, release }
    },
    release() {
      const held = adapter.held
      adapter.held = null
      if (held) held.release()
    },
    last() {
      return adapter.tables[adapter.tables.length - 1]
    },
    servers() {
      const last = adapter.last()
      return last ? last.servers.map((s) => `${s.address}:${s.port} ${s.state}`) : []
    },
  }
  return adapter
}

async function router(adapter, p, extra = {}) {
  const r = new HandoverRouter(adapter, {
    serviceName: 'api',
    servicePort: 8080,
    networkPort: p.status,
    routerPort: p.router,
    interfaceAddress: '127.0.0.1',
    subnets: ['127.0.0.0/8'],
    name: 'edge',
    // Three periods outlast the longest gap of UP's schedule before 10 s (6.3 → 10 s): no instance of a test
    // is taken for gone while it runs.
    upPeriodMs: 1300,
    logLevel: 'error',
    ...extra,
  })
  open.push(r)
  const changes = []
  r.on('change', (line, event) => changes.push(event))
  r.changes = changes
  await r.start()
  return r
}

test('UP makes an instance routable; the drain waits until the proxy confirmed it, and the report names the router', async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p)
  const v1 = instance(1_000, '127.0.0.2', p)
  v1.startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().join() === '127.0.0.2:8080 ready', 3000, 'v1 routed')
  const v2 = instance(2_000, '127.0.0.3', p)
  v2.startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().length === 2, 3000, 'v2 routed')

  // The proxy takes its time to confirm the drain: the drain must wait for it.
  adapter.hold()
  let settled = false
  const draining = v1.drain({ timeoutMs: 5000 }).then((report) => {
    settled = true
    return report
  })
  await waitFor(() => adapter.servers().includes('127.0.0.2:8080 drain'), 3000, 'v1 drained in the table')
  await sleep(300)
  expect(settled).toBe(false)
  adapter.release()
  const report = await draining
  expect(report.timedOut).toEqual([])
  expect(report.acknowledged).toEqual([{ id: r.id, name: 'edge', address: '127.0.0.1' }])
  expect(adapter.servers()).toEqual(['127.0.0.3:8080 ready', '127.0.0.2:8080 drain'])
  const drained = r.changes.find((c) => c.kind === 'drained')
  expect(drained).toMatchObject({ timestamp: 1_000 })
  expect(drained.elapsedMs).toBeGreaterThan(0)
  // DOWN is terminal: v1's UP heartbeats keep coming, and change nothing.
  await sleep(800)
  expect(adapter.servers()).toEqual(['127.0.0.3:8080 ready', '127.0.0.2:8080 drain'])
})

test('with no router heard, a drain does not wait', async () => {
  const p = ports()
  const v1 = instance(1_000, '127.0.0.2', p)
  v1.startBroadcastingServiceUp()
  const report = await v1.drain({ timeoutMs: 20_000 })
  expect(report).toMatchObject({ acknowledged: [], timedOut: [] })
  expect(report.waitedMs).toBeLessThan(20_000)
})

test('a router whose proxy fails is reported, retried, and named in the report when the drain times out', async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p)
  const errors = []
  r.on('error', (e) => errors.push(e))
  const v1 = instance(1_000, '127.0.0.2', p)
  const v2 = instance(2_000, '127.0.0.3', p)
  v1.startBroadcastingServiceUp()
  v2.startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().length === 2, 3000, 'both routed')
  adapter.failing = 'cannot reach the proxy'
  const report = await v1.drain({ timeoutMs: 1200 })
  expect(report.acknowledged).toEqual([])
  expect(report.timedOut.map((t) => t.id)).toEqual([r.id])
  expect(errors.length).toBeGreaterThan(0)
  const unreachable = r.changes.filter((c) => c.kind === 'unreachable')
  expect(unreachable).toHaveLength(1) // one line per state change, not per retry
  expect(unreachable[0].line).toMatch(/cannot reach the proxy; retrying/)
  const failedTries = adapter.tables.length
  adapter.failing = null
  await waitFor(() => r.changes.some((c) => c.kind === 'recovered'), 8000, 'recovered')
  expect(adapter.tables.length).toBeGreaterThan(failedTries)
  expect(r.stats().applyFailures).toBeGreaterThanOrEqual(1)
})

test('other services and addresses outside the subnets never reach the proxy', async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p, { subnets: ['127.0.0.0/30'] })
  instance(1_000, '127.0.0.2', p, {}, 'worker').startBroadcastingServiceUp()
  instance(2_000, '127.0.0.9', p).startBroadcastingServiceUp()
  instance(3_000, '127.0.0.3', p).startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().length === 1, 3000, 'the one instance inside')
  await sleep(700)
  for (const table of adapter.tables) {
    expect(table.servers.map((s) => s.address)).toEqual(['127.0.0.3'])
  }
  const stats = r.stats()
  expect(stats.otherService).toBeGreaterThan(0)
  expect(stats.outsideSubnets).toBeGreaterThan(0)
  expect(r.changes.filter((c) => c.kind === 'refused')).toHaveLength(1)
})

test('with HANDOVER_SECRET, unsigned, forged and replayed status messages never reach the proxy', async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p, { secret: 's3cret' })
  // An instance of the original (unsigned), one with the wrong secret, and a forged raw UP.
  instance(1_000, '127.0.0.2', p).startBroadcastingServiceUp()
  instance(2_000, '127.0.0.3', p, { secret: 'wrong' }).startBroadcastingServiceUp()
  await sendRaw(p.status, encodeStatusMessage(new Date(3_000), 'api', ['127.0.0.4'], 'UP'), GROUP)
  // The real one, and a capture of its signed UP replayed later.
  const capture = await captureOn(p.status)
  instance(4_000, '127.0.0.5', p, { secret: 's3cret' }).startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().join() === '127.0.0.5:8080 ready', 3000, 'the signed instance')
  const signed = await waitFor(() => capture.packets.find((b) => b.length > 120), 3000, 'a signed UP')
  capture.close()
  const refusedBefore = r.stats().refused
  await sendRaw(p.status, signed, GROUP)
  await waitFor(() => r.stats().refused > refusedBefore, 3000, 'the replay refused')
  await sleep(300)
  for (const table of adapter.tables) expect(table.servers.map((s) => s.address)).toEqual(['127.0.0.5'])
})

test('with a secret, an instance ignores an unsigned DRAINED: a forged acknowledgement cannot end its drain', async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p, { secret: 'k' })
  const v1 = instance(1_000, '127.0.0.2', p, { secret: 'k' })
  const v2 = instance(2_000, '127.0.0.3', p, { secret: 'k' })
  v1.startBroadcastingServiceUp()
  v2.startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().length === 2, 3000, 'both routed')
  adapter.hold()
  const draining = v1.drain({ timeoutMs: 5000 })
  await waitFor(() => adapter.servers().includes('127.0.0.2:8080 drain'), 3000, 'drain asked of the proxy')
  // A forged DRAINED in the router's name, without a MAC.
  const forged = Buffer.alloc(81)
  forged[0] = 0x03
  forged[1] = 0x02
  Buffer.from(r.id, 'hex').copy(forged, 2)
  forged.writeBigInt64BE(1_000n, 10)
  forged.write('api', 18)
  let settled = false
  draining.then(() => (settled = true))
  const before = v1.stats()
  await sendRaw(p.router, [forged, forged, forged, Buffer.from('not a router message')], GROUP)
  await sleep(300)
  expect(settled).toBe(false)
  // Dropped and counted, as every bad packet is.
  const after = v1.stats()
  expect(after.unauthenticated - before.unauthenticated).toBe(3)
  expect(after.malformed - before.malformed).toBe(1)
  adapter.release()
  const report = await draining
  expect(report.acknowledged.map((a) => a.id)).toEqual([r.id])
  // The router's own HELLO and DRAINED, signed, were taken.
  expect(v1.stats().fromRouters).toBeGreaterThanOrEqual(2)
  expect(v1.stats().unauthenticated).toBe(after.unauthenticated)
})

test("the last ready server's drain is held until another instance is ready", async () => {
  const p = ports()
  const adapter = recordingAdapter()
  const r = await router(adapter, p)
  const v1 = instance(1_000, '127.0.0.2', p)
  v1.startBroadcastingServiceUp()
  await waitFor(() => adapter.servers().length === 1, 3000, 'v1 routed')
  let settled = false
  const draining = v1.drain({ timeoutMs: 8000 }).then((report) => ((settled = true), report))
  await waitFor(() => r.changes.some((c) => c.kind === 'held'), 3000, 'the drain held')
  await sleep(400)
  expect(settled).toBe(false)
  expect(adapter.servers()).toEqual(['127.0.0.2:8080 ready'])
  instance(2_000, '127.0.0.3', p).startBroadcastingServiceUp()
  const report = await draining
  expect(report.acknowledged.map((a) => a.id)).toEqual([r.id])
  expect(adapter.servers()).toEqual(['127.0.0.3:8080 ready', '127.0.0.2:8080 drain'])
})

test("a late router learns from the tickers, and works with the original's 120-byte status messages", async () => {
  const p = ports()
  // A draining instance of the original: DOWN every 100 ms, its UP too, unsigned, nothing after byte 120.
  const down = encodeStatusMessage(new Date(1_000), 'api', ['127.0.0.2'], 'DOWN')
  const up = encodeStatusMessage(new Date(2_000), 'api', ['127.0.0.3'], 'UP')
  expect(down.length).toBe(120)
  const ticker = setInterval(() => sendRaw(p.status, [down, up], GROUP).catch(() => {}), 100)
  try {
    await sleep(300)
    const adapter = recordingAdapter()
    const r = await router(adapter, p)
    await waitFor(() => adapter.servers().join() === '127.0.0.3:8080 ready', 3000, 'the serving one routed')
    // The draining one was never routed here: acknowledged once a first table was confirmed.
    const acks = await captureOn(p.router)
    await waitFor(
      () => acks.packets.some((b) => b[0] === 0x03 && b[1] === 0x02 && b.readBigInt64BE(10) === 1_000n),
      3000,
      'DRAINED for the original instance',
    )
    acks.close()
    expect(adapter.tables.every((t) => t.servers.every((s) => s.address === '127.0.0.3'))).toBe(true)
    expect(r.stats().statusHeard).toBeGreaterThan(0)
  } finally {
    clearInterval(ticker)
  }
})

test("routers do not disturb a listener that, like handover-lib 0.2.3's, throws on anything but a 120-byte v2 message", async () => {
  const p = ports()
  // handover-lib 0.2.3 decodes every packet on the status port in an async
  // handler: a version byte other than 2 throws, a short packet throws a
  // RangeError (an unhandled rejection: the process ends). It reads fixed
  // offsets and ignores bytes after the 120th.
  const heard = []
  const throws = []
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  socket.on('message', (b) => {
    try {
      if (b[0] !== 2) throw new Error(`version mismatch on HandoverStatusMessage; received ${b[0]}`)
      const text = (from, to) => b.subarray(from, to).toString('utf8').replace(/\0.*$/s, '')
      if (b.length < 120) throw new RangeError('out of range')
      heard.push(text(112, 120))
    } catch (error) {
      throws.push(error)
    }
  })
  await new Promise((resolve) => socket.bind(p.status, resolve))
  socket.addMembership(GROUP, '127.0.0.1')
  try {
    const adapter = recordingAdapter()
    await router(adapter, p, { secret: 'k' })
    const v1 = instance(1_000, '127.0.0.2', p, { secret: 'k' })
    const v2 = instance(2_000, '127.0.0.3', p, { secret: 'k' })
    v1.startBroadcastingServiceUp()
    v2.startBroadcastingServiceUp()
    await waitFor(() => adapter.servers().length === 2, 3000, 'both routed')
    const report = await v1.drain({ timeoutMs: 3000 })
    expect(report.acknowledged).toHaveLength(1)
    expect(throws).toEqual([])
    expect(heard).toContain('UP')
    expect(heard).toContain('DOWN')
  } finally {
    socket.close()
  }
})

test("require() leaves router.js unread until the first HandoverRouter; the class has its methods all along", async () => {
  expect(Object.getOwnPropertyNames(HandoverRouter.prototype).sort()).toEqual(['close', 'constructor', 'id', 'start', 'stats', 'table'])
  const script = [
    "const path = require('node:path')",
    "const loaded = () => Object.keys(require.cache).some((f) => path.basename(f) === 'router.js')",
    "const { HandoverRouter } = require('./index.js')",
    'const before = loaded()',
    "const router = new HandoverRouter({ apply: async () => {} }, { serviceName: 'api', servicePort: 8080, subnets: ['127.0.0.0/8'] })",
    'console.log(JSON.stringify({ before, after: loaded(), instance: router instanceof HandoverRouter }))',
  ].join('\n')
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { cwd: require('node:path').join(__dirname, '..') }, (error, stdout) => (error ? reject(error) : resolve(stdout))),
  )
  expect(JSON.parse(out)).toEqual({ before: false, after: true, instance: true })
})

test('bad arguments are refused at the call, with codes', () => {
  const p = ports()
  const adapter = recordingAdapter()
  expect(() => new HandoverRouter({}, { serviceName: 'api', servicePort: 1 })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/apply/) }),
  )
  expect(() => new HandoverRouter(adapter, { servicePort: 1, serviceName: 5 })).toThrow(/options.serviceName must be a string/)
  expect(() => new HandoverRouter(adapter, { serviceName: 'api' })).toThrow(/servicePort is required/)
  expect(() => new HandoverRouter(adapter, { serviceName: 'api', servicePort: 70000 })).toThrow(
    expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
  )
  expect(() => new HandoverRouter(adapter, { serviceName: 'api', servicePort: 1, subnets: '10.0.0.0/8' })).toThrow(
    /subnets must be an array/,
  )
  expect(() => new HandoverRouter(adapter, { serviceName: 'api', servicePort: 1, subnets: ['10.0.0.0/99'] })).toThrow(
    /prefix length/,
  )
  expect(() => new HandoverRouter(adapter, { serviceName: 'a\0b', servicePort: 1 })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
  )
  const s = instance(1_000, '127.0.0.2', p)
  expect(() => s.drain({ timeoutMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  expect(() => s.drain({ timeoutMs: '5' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
})

test('a router keeps the process alive only between start() and close(): never started, or closed, the process ends by itself', async () => {
  const p = ports()
  const script = (start) => `
    const { HandoverRouter } = require(${JSON.stringify(require.resolve('..'))})
    const r = new HandoverRouter({ apply: async () => {} }, { serviceName: 'api', servicePort: 1,
      interfaceAddress: '127.0.0.1', subnets: ['127.0.0.0/8'], networkPort: ${p.status}, routerPort: ${p.router}, logLevel: 'error' })
    ${start ? "r.start().then(() => setTimeout(() => r.close().then(() => console.log('closed')), 200))" : "console.log('constructed')"}
  `
  const run = (start) =>
    new Promise((resolve) => {
      execFile(process.execPath, ['-e', script(start)], { timeout: 10_000 }, (error, stdout) =>
        resolve({ code: error ? error.code : 0, killed: Boolean(error && error.killed), stdout: stdout.trim() }),
      )
    })
  expect(await run(false)).toEqual({ code: 0, killed: false, stdout: 'constructed' })
  expect(await run(true)).toEqual({ code: 0, killed: false, stdout: 'closed' })
})
