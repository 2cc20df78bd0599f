'use strict'
// What a closed object, a throwing listener and a NUL in a string do: each
// as a user of any EventEmitter-based library would expect. Ports 47440–47459.

const { spawnSync } = require('node:child_process')
const path = require('node:path')

const { HandoverPeer, HandoverStatus, encodeStatusMessage } = require('..')
const { loopbackOptions, sendRaw, waitFor, sleep } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

test('nothing reaches a status listener once close() has returned, even what was queued', async () => {
  const port = 47_440
  const status = new HandoverStatus(new Date(), 'api', ['10.0.0.2'], { id: 'router' }, loopbackOptions(port))
  let delivered = 0
  status.startListening(() => delivered++)
  const packet = encodeStatusMessage(Date.now(), 'api', ['10.0.0.2'], 'UP')
  // Keep JS busy while 500 messages queue up for it, then close before it
  // gets to any of them.
  await sendRaw(port, Array(500).fill(packet))
  const end = Date.now() + 300
  while (Date.now() < end);
  status.close()
  await sleep(300)
  expect(delivered).toBe(0)
  expect(status.stats().received).toBeGreaterThan(0)
})

test("a 'handover' listener that throws surfaces as an uncaught exception, as any listener's throw", () => {
  const source = `
    const { HandoverPeer } = require('./index.js')
    const options = ${JSON.stringify(loopbackOptions(47_441))}
    options.handoverCompletePath = require('os').tmpdir() + '/handover-listener-throws-' + process.pid
    process.on('exit', () => require('fs').rmSync(options.handoverCompletePath, { force: true }))
    const old = new HandoverPeer(new Date(1000), { id: 'old' }, options)
    old.startListening(async () => {})
    old.on('handover', () => { throw new Error('listener failed') })
    old.on('handover', () => console.log('second listener'))
    old.handover.then(() => console.log('promise resolved'))
    const young = new HandoverPeer(new Date(), { id: 'young' }, options)
    young.startBroadcasting()
    setTimeout(() => young.close(), 200)
  `
  const result = spawnSync(process.execPath, ['-e', source], { cwd: ROOT, encoding: 'utf8', timeout: 10_000 })
  expect(result.signal).toBeNull()
  expect(result.status).toBe(1) // Node's exit code for an uncaught exception
  expect(result.stderr).toContain('Error: listener failed')
  // As EventEmitter does: the throw stops later listeners; the Promise is settled first.
  expect(result.stdout).not.toContain('second listener')
})

describe('a NUL in any string is refused at construction with ERR_INVALID_ARG_VALUE', () => {
  const now = new Date()
  test.each([
    ['address', { address: '127.0.0.1\0' }],
    ['logLevel', { logLevel: 'info\0' }],
    ['networkMode', { networkMode: 'host\0' }],
    ['networkInterface', { networkInterface: 'lo\0' }],
    ['handoverCompletePath', { handoverCompletePath: '/tmp/done\0' }],
    ['serviceName', { serviceName: 'api\0' }],
    ['secret', { secret: 'key\0' }],
  ])('options.%s', (name, options) => {
    for (const make of [
      () => new HandoverPeer(now, undefined, { port: 47_442, ...options }),
      () => new HandoverStatus(now, 'api', [], undefined, { port: 47_443, ...options }),
    ]) {
      let thrown
      try {
        make().close()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeInstanceOf(TypeError)
      expect(thrown.code).toBe('ERR_INVALID_ARG_VALUE')
      expect(thrown.message).toBe(`options.${name} must not contain a NUL character`)
    }
  })

  test('a status address and the service name', () => {
    expect(() => new HandoverStatus(now, 'api', ['10.0.0.2\0'])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: 'addresses[0] must not contain a NUL character' }),
    )
    expect(() => new HandoverStatus(now, 'a\0pi', [])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
  })

  test('no GenericFailure reaches a user, whatever an error message quotes', () => {
    let thrown
    try {
      new HandoverPeer(now, undefined, { port: 47_444, address: 'not\0an address' })
    } catch (error) {
      thrown = error
    }
    expect(thrown.code).not.toBe('GenericFailure')
    expect(thrown.code).toMatch(/^ERR_/)
  })
})

test('a closed peer runs no shutdown callback for what was already on its socket', async () => {
  const port = 47_445
  const peer = new HandoverPeer(new Date(1000), { id: 'old' }, loopbackOptions(port))
  let called = 0
  peer.startListening(() => called++)
  const young = new HandoverPeer(new Date(), { id: 'young' }, loopbackOptions(port))
  const end = Date.now() + 200
  young.startBroadcasting()
  while (Date.now() < end);
  peer.close()
  young.close()
  await sleep(300)
  expect(called).toBe(0)
  await waitFor(() => true)
})
