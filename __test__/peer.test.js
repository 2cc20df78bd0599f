'use strict'
// HandoverPeer against real loopback multicast sockets, two or more
// instances in this process. Ports 22000–22099.

const fs = require('node:fs')
const path = require('node:path')
const { HandoverPeer } = require('..')
const { loopbackOptions, sendRaw, v1, waitFor, sleep, tempDir } = require('../test-support/loopback')

let nextPort = 22000
const open = []

/** A peer on its own port (unless given), closed after the test. */
function peer(startedAt, options = {}) {
  const p = new HandoverPeer(startedAt, undefined, { ...loopbackOptions(options.port), ...options })
  open.push(p)
  return p
}

afterEach(() => {
  while (open.length) open.pop().close()
})

function setup(extra = {}) {
  const port = nextPort++
  const dir = tempDir()
  const completePath = path.join(dir, 'handover-complete')
  return { port, dir, completePath, options: { port, handoverCompletePath: completePath, ...extra } }
}

describe('a younger instance', () => {
  test('makes the old one run its callback exactly once, then write the complete file', async () => {
    const { options, completePath } = setup()
    const old = peer(new Date(Date.now() - 60_000), options)
    const young = peer(new Date(), options)
    let calls = 0
    let fileExistedDuringCallback = null
    let finishCallback
    old.startListening(() => {
      calls++
      fileExistedDuringCallback = fs.existsSync(completePath)
      return new Promise((resolve) => (finishCallback = resolve))
    })
    young.startListening(async () => {
      throw new Error('the young instance must survive')
    })
    old.startBroadcasting()
    await sleep(50)
    expect(old.shuttingDown).toBe(false)

    young.startBroadcasting()
    await waitFor(() => calls === 1, 5000, 'the old callback')
    expect(old.shuttingDown).toBe(true)
    expect(young.shuttingDown).toBe(false)
    expect(fileExistedDuringCallback).toBe(false)
    // The callback has not settled: no complete file yet.
    await sleep(200)
    expect(fs.existsSync(completePath)).toBe(false)

    finishCallback()
    const report = await old.handover
    expect(report.completeFile).toBe(completePath)
    expect(fs.readFileSync(completePath, 'utf8')).toMatch(/^Shutting down at \w{3} \w{3} \d{2} \d{4} /)

    // The young one keeps announcing (the burst repeats quickly): still once.
    await sleep(400)
    expect(calls).toBe(1)
    expect(young.shuttingDown).toBe(false)
    expect(old.stats().accepted).toBeGreaterThanOrEqual(1)
  })

  test('stops the old one announcing; startBroadcasting() afterwards does nothing', async () => {
    const { options } = setup({ heartbeatIntervalMs: 50 })
    const old = peer(new Date(Date.now() - 1000), options)
    const young = peer(new Date(), options)
    old.startListening(async () => {})
    old.startBroadcasting()
    young.startBroadcasting()
    await old.handover
    const sent = old.stats().sent
    old.startBroadcasting()
    await sleep(300)
    expect(old.stats().sent).toBe(sent)
  })

  test('emits shuttingDown, then handover with the report', async () => {
    const { options, completePath } = setup()
    const old = peer(new Date(1_000), options)
    const events = []
    old.on('shuttingDown', (e) => events.push(['shuttingDown', e]))
    old.on('handover', (e) => events.push(['handover', e]))
    old.startListening(() => undefined) // a plain function is fine too
    await sendRaw(options.port, v1(2_000))
    await old.handover
    await waitFor(() => events.length === 2)
    expect(events[0][0]).toBe('shuttingDown')
    expect(events[0][1]).toMatchObject({ heardStartedAt: 2000, ownStartedAt: 1000 })
    expect(events[1][1]).toMatchObject({
      heardStartedAt: 2000,
      callbackError: null,
      callbackTimedOut: false,
      completeFile: completePath,
    })
  })
})

describe('announcements that do not make an instance hand over', () => {
  test('older and equal timestamps (plain v1) are ignored and counted', async () => {
    const { options } = setup()
    const me = peer(new Date(5_000), options)
    const callback = jest.fn(async () => {})
    me.startListening(callback)
    await sendRaw(options.port, [v1(4_999), v1(5_000), v1(-1), v1(0)])
    await waitFor(() => me.stats().older === 4, 3000, 'four older packets')
    await sleep(100)
    expect(callback).not.toHaveBeenCalled()
    expect(me.shuttingDown).toBe(false)
  })

  test('own announcements are recognised, not mistaken for a younger peer', async () => {
    const { options } = setup()
    const me = peer(new Date(), options)
    const callback = jest.fn(async () => {})
    me.startListening(callback)
    me.startBroadcasting()
    await waitFor(() => me.stats().own >= 2, 3000, 'own packets looping back')
    expect(callback).not.toHaveBeenCalled()
  })

  test('another service is ignored; an unscoped (original) announcement is honoured', async () => {
    const { options } = setup()
    const worker = peer(new Date(1_000), { ...options, serviceName: 'worker' })
    const apiNew = peer(new Date(), { ...options, serviceName: 'api' })
    const callback = jest.fn(async () => {})
    worker.startListening(callback)
    apiNew.startBroadcasting()
    await waitFor(() => worker.stats().otherService >= 1, 3000, 'an announcement of another service')
    expect(callback).not.toHaveBeenCalled()
    await sendRaw(options.port, v1(2_000))
    await worker.handover
    expect(callback).toHaveBeenCalledTimes(1)
  })

  test('malformed packets are dropped and counted; a valid one still works after them', async () => {
    const { options } = setup()
    const me = peer(new Date(1_000), options)
    me.startListening(async () => {})
    const junk = [
      Buffer.alloc(0),
      Buffer.from([1]),
      Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 9]),
      Buffer.from('not a handover message at all'),
      Buffer.concat([v1(9_999), Buffer.from('HO\x01\x02\x07abc')]), // our extension, bad length
      Buffer.alloc(2000, 0xff),
    ]
    await sendRaw(options.port, junk)
    await waitFor(() => me.stats().malformed === junk.length, 3000, 'malformed packets counted')
    expect(me.shuttingDown).toBe(false)
    await sendRaw(options.port, v1(2_000))
    await me.handover
  })
})

describe('same-millisecond instances', () => {
  test('exactly one of two peers of ours with equal timestamps survives', async () => {
    const { options } = setup()
    const startedAt = Date.now()
    const a = peer(new Date(startedAt), options)
    const b = peer(new Date(startedAt), options)
    const called = []
    a.startListening(async () => called.push('a'))
    b.startListening(async () => called.push('b'))
    a.startBroadcasting()
    b.startBroadcasting()
    await waitFor(() => called.length >= 1, 5000, 'one handover')
    await sleep(500)
    expect(called).toHaveLength(1)
    const survivor = called[0] === 'a' ? b : a
    const yielded = called[0] === 'a' ? a : b
    expect(survivor.shuttingDown).toBe(false)
    expect(yielded.shuttingDown).toBe(true)
    // The higher instance id is the one that survives.
    expect(survivor.instanceId > yielded.instanceId).toBe(true)
  })
})

describe('a shutdown callback that fails', () => {
  test.each([
    ['throws', () => {
      throw new Error('sync boom')
    }, /sync boom/],
    ['rejects', async () => {
      throw new TypeError('async boom')
    }, /TypeError: async boom/],
    ['rejects with a non-Error', () => Promise.reject('just a string'), /just a string/],
  ])('that %s is logged and the file is still written', async (_, callback, pattern) => {
    const { options, completePath } = setup()
    const me = peer(new Date(1_000), options)
    me.startListening(callback)
    await sendRaw(options.port, v1(2_000))
    const report = await me.handover
    expect(report.callbackError).toMatch(pattern)
    expect(report.completeFile).toBe(completePath)
    expect(fs.existsSync(completePath)).toBe(true)
  })

  test('that never settles is abandoned after callbackTimeoutMs', async () => {
    const { options, completePath } = setup({ callbackTimeoutMs: 200 })
    const me = peer(new Date(1_000), options)
    me.startListening(() => new Promise(() => {}))
    const started = Date.now()
    await sendRaw(options.port, v1(2_000))
    const report = await me.handover
    expect(report.callbackTimedOut).toBe(true)
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    expect(fs.existsSync(completePath)).toBe(true)
  })
})

describe('close()', () => {
  test('inside the shutdown callback does not stop the handover from completing', async () => {
    const { options, completePath } = setup()
    const me = peer(new Date(1_000), options)
    me.startListening(async () => {
      me.close()
      await sleep(50)
    })
    await sendRaw(options.port, v1(2_000))
    const report = await me.handover
    expect(report.completeFile).toBe(completePath)
  })

  test('stops listening: a closed peer no longer hands over', async () => {
    const { options } = setup()
    const me = peer(new Date(1_000), options)
    const callback = jest.fn(async () => {})
    me.startListening(callback)
    me.close()
    await sleep(50)
    await sendRaw(options.port, v1(2_000))
    await sleep(200)
    expect(callback).not.toHaveBeenCalled()
    expect(() => me.startListening(callback)).toThrow(/closed/)
    expect(() => me.startBroadcasting()).toThrow(/closed/)
  })
})

describe('authentication', () => {
  test('with a secret, unsigned and wrongly signed announcements are ignored; signed ones work', async () => {
    const { options } = setup()
    const me = peer(new Date(1_000), { ...options, secret: 'fleet-secret' })
    const callback = jest.fn(async () => {})
    me.startListening(callback)
    await sendRaw(options.port, v1(Number.MAX_SAFE_INTEGER))
    const forger = peer(new Date(), { ...options, secret: 'wrong-secret' })
    forger.startBroadcasting()
    await waitFor(() => me.stats().unauthenticated >= 2, 3000, 'unauthenticated packets')
    expect(callback).not.toHaveBeenCalled()

    const legit = peer(new Date(), { ...options, secret: 'fleet-secret' })
    legit.startBroadcasting()
    await me.handover
    expect(callback).toHaveBeenCalledTimes(1)
  })
})

describe('a port held by a socket that does not share it', () => {
  test('startListening does not throw: the error is logged and emitted as error', async () => {
    const dgram = require('node:dgram')
    const { options } = setup()
    const holder = dgram.createSocket({ type: 'udp4', reuseAddr: false })
    await new Promise((resolve) => holder.bind(options.port, resolve))
    try {
      const me = peer(new Date(), options)
      const errors = []
      me.on('error', (e) => errors.push(e))
      expect(() => me.startListening(async () => {})).not.toThrow()
      expect(errors).toHaveLength(1)
      expect(errors[0].message).toMatch(new RegExp(`port ${options.port} is in use`))
    } finally {
      holder.close()
    }
  })
})
