'use strict'
// Bad input fails at the call that received it, with the right error class
// and a message that names the argument and the limit (SPEC §5.8).

const { HandoverPeer, HandoverStatus } = require('..')

const now = new Date()

describe('HandoverPeer', () => {
  test.each([
    ['a date string', '2024-01-01'],
    ['undefined', undefined],
    ['a boolean', true],
    ['an object without a numeric valueOf', {}],
    ['an Invalid Date', new Date('nope')],
    ['a number that is no time', Number.NaN],
  ])('startedAt as %s is a TypeError', (_, startedAt) => {
    expect(() => new HandoverPeer(startedAt)).toThrow(TypeError)
    expect(() => new HandoverPeer(startedAt)).toThrow(/startedAt/)
  })

  // What handover-lib took (it read `BigInt(startedAt.valueOf())`) works as it did.
  test.each([
    ['a number', 1700000000000],
    ['a bigint', 1700000000000n],
    ['a string of digits', '1700000000000'],
    ['a Number object', Object(1700000000000)],
    ['an object with a numeric valueOf', { valueOf: () => 1700000000000 }],
  ])('startedAt as %s is taken as ms since the epoch', (_, startedAt) => {
    const peer = new HandoverPeer(startedAt, undefined, { address: '127.0.0.1', port: 47_400 })
    expect(peer.startedAt).toBe(startedAt)
    expect(peer.shuttingDown).toBe(false)
    peer.close()
  })

  test('a context id of any type is shown as text, as handover-lib interpolated it', async () => {
    const lines = []
    const logger = (level, message) => lines.push(message)
    const options = { address: '127.0.0.1', port: 47_401, logger }
    const peers = [new HandoverPeer(now, { id: 42 }, options), new HandoverPeer(now, 'ctx', options)]
    expect(peers.map((peer) => peer.context)).toEqual([{ id: 42 }, 'ctx'])
    // Log lines reach a custom logger on a later turn of the loop.
    const seen = (prefix) => lines.some((line) => line.startsWith(prefix))
    for (let i = 0; i < 200 && !(seen('[42] ') && seen('[ctx] ')); i++) await new Promise((r) => setTimeout(r, 10))
    peers.forEach((peer) => peer.close())
    expect(seen('[42] ')).toBe(true)
    expect(seen('[ctx] ')).toBe(true)
  })

  test.each([
    [{ port: 0 }, RangeError, /options\.port must be from 1 to 65535; got 0/],
    [{ port: 70000 }, RangeError, /options\.port/],
    [{ port: 1.5 }, RangeError, /integer/],
    [{ address: 'not-an-ip' }, TypeError, /options\.address must be an IPv4 address/],
    [{ address: '::1' }, TypeError, /IPv4/],
    [{ networkMode: 'overlay' }, RangeError, /options\.networkMode must be 'bridge' or 'host'/],
    [{ serviceName: 'x'.repeat(64) }, RangeError, /at most 63/],
    [{ callbackTimeoutMs: -1 }, RangeError, /callbackTimeoutMs/],
    [{ heartbeatIntervalMs: 1 }, RangeError, /heartbeatIntervalMs/],
    [{ logLevel: 'loud' }, RangeError, /logLevel/],
  ])('options %j fail with a clear error', (options, Class, message) => {
    expect(() => new HandoverPeer(now, undefined, options)).toThrow(Class)
    expect(() => new HandoverPeer(now, undefined, options)).toThrow(message)
  })

  test.each([
    [{ port: '1536' }, /options\.port/],
    [{ address: 5 }, /options\.address/],
    [{ serviceName: {} }, /options\.serviceName/],
  ])('options %j of the wrong type are a TypeError naming the option', (options, message) => {
    expect(() => new HandoverPeer(now, undefined, options)).toThrow(TypeError)
    expect(() => new HandoverPeer(now, undefined, options)).toThrow(message)
  })

  test('a bad environment variable names the variable', () => {
    const saved = process.env.SHUTDOWN_PORT
    process.env.SHUTDOWN_PORT = '15x6'
    try {
      expect(() => new HandoverPeer(now)).toThrow(/SHUTDOWN_PORT must be an integer/)
    } finally {
      if (saved === undefined) delete process.env.SHUTDOWN_PORT
      else process.env.SHUTDOWN_PORT = saved
    }
  })

  test('startListening needs a function', () => {
    const peer = new HandoverPeer(now, undefined, { port: 22290, networkMode: 'host', networkInterface: 'lo' })
    expect(() => peer.startListening('nope')).toThrow(TypeError)
    expect(() => peer.startListening()).toThrow(/shutdownCallback must be a function/)
    peer.close()
  })
})

describe('HandoverStatus', () => {
  test.each([
    [[now, 'x'.repeat(64), []], RangeError, /serviceName is 64 bytes of UTF-8; at most 63/],
    [[now, 'é'.repeat(32), []], RangeError, /64 bytes/],
    [[now, 'api', Array.from({ length: 11 }, (_, i) => `10.0.0.${i + 1}`)], RangeError, /at most 10/],
    [[now, 'api', ['10.0.0.1', 'fe80::1']], TypeError, /addresses\[1\] must be an IPv4 address/],
    [[now, 'api', ['300.1.1.1']], TypeError, /addresses\[0\]/],
    [[now, 'api', 'not-an-array'], TypeError, /addresses must be an array/],
    [[now, 42, []], TypeError, /serviceName must be a string/],
    [[new Date(NaN), 'api', []], TypeError, /startedAt/],
  ])('%j fails with a clear error', (args, Class, message) => {
    expect(() => new HandoverStatus(...args)).toThrow(Class)
    expect(() => new HandoverStatus(...args)).toThrow(message)
  })

  test('a status over 8 bytes cannot be encoded', () => {
    const { encodeStatusMessage } = require('..')
    expect(() => encodeStatusMessage(1, 'api', [], 'SHUTTINGDOWN')).toThrow(RangeError)
    expect(() => encodeStatusMessage(1, 'api', [], 'SHUTTINGDOWN')).toThrow(/status is 12 bytes of UTF-8; at most 8/)
  })
})

describe('error codes', () => {
  const { HandoverPeer: Peer, HandoverStatus: Status, describePacket: describe_, encodeStatusMessage: encode } = require('..')
  const codeOf = (fn) => {
    try {
      fn()
    } catch (error) {
      return [error.constructor, error.code]
    }
    return null
  }

  test('each error carries a stable code in the class of the caller’s realm', () => {
    expect(codeOf(() => new Peer('yesterday'))).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE'])
    expect(codeOf(() => new Peer(new Date(), undefined, { port: 70000 }))).toEqual([RangeError, 'ERR_OUT_OF_RANGE'])
    expect(codeOf(() => new Peer(new Date(), undefined, { port: null }))).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE'])
    expect(codeOf(() => new Status(new Date(), 'api', ['10.0.0.1', 'fe80::1']))).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE'])
    expect(codeOf(() => encode(Date.now(), 'api', [], 'DRAININGNOW'))).toEqual([RangeError, 'ERR_OUT_OF_RANGE'])
    expect(codeOf(() => describe_(5))).toEqual([TypeError, 'ERR_INVALID_ARG_TYPE'])
    const peer = new Peer(new Date(), undefined, { port: 22990, networkMode: 'host', networkInterface: 'lo', logLevel: 'error' })
    peer.close()
    expect(codeOf(() => peer.startBroadcasting())).toEqual([Error, 'ERR_HANDOVER_CLOSED'])
    const status = new Status(new Date(), 'api', [], undefined, { port: 22991, networkMode: 'host', networkInterface: 'lo', logLevel: 'error' })
    status.close()
    expect(codeOf(() => status.startListening(() => {}))).toEqual([Error, 'ERR_HANDOVER_CLOSED'])
  })
})
