'use strict'
// Log lines: the original's shape on stdout, LOGLEVEL filtering, a custom
// logger, and the host-mode warning when the interface is missing.
// Ports 22400–22499.

const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { HandoverPeer } = require('..')
const { loopbackOptions, sendRaw, v1, tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

/** Runs `source` in a child node with `env`; returns its stdout lines. */
function childLines(source, env = {}) {
  const result = spawnSync(process.execPath, ['-e', source], {
    cwd: ROOT,
    env: { ...process.env, LOGLEVEL: '', ...env },
    encoding: 'utf8',
    timeout: 10_000,
  })
  expect(result.status).toBe(0)
  return result.stdout.split('\n').filter(Boolean)
}

const HANDOVER_IN_CHILD = `
  const { HandoverPeer } = require('./index.js')
  const opts = { port: 22400, networkMode: 'host', networkInterface: 'lo', handoverCompletePath: require('os').tmpdir() + '/handover-log-test-' + process.pid }
  const old = new HandoverPeer(new Date(1000), { id: 'old-one' }, opts)
  old.startListening(async () => {})
  const young = new HandoverPeer(new Date(), { id: 'young-one' }, opts)
  young.startBroadcasting()
  old.handover.then(() => young.close())
`

test('lines have the original shape and LOGLEVEL=info hides debug lines', () => {
  const lines = childLines(HANDOVER_IN_CHILD, { LOGLEVEL: 'info' })
  const shape = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[handover\] \[(\w+)\] \[([^\]]+)\]: .+$/
  for (const line of lines) expect(line).toMatch(shape)
  const text = lines.join('\n')
  expect(text).toContain('[info] [old-one]: heartbeatClientSocket listening 0.0.0.0:22400')
  expect(text).toMatch(/\[info\] \[old-one\]: Shutting down, theres a new server running with timestamp : \d+ and we have 1000/)
  expect(text).toMatch(/\[info\] \[old-one\]: shut-me-down file written at /)
  expect(text).toContain('[info] [young-one]: ticker started')
  expect(text).not.toContain('[debug]')
})

test('LOGLEVEL=debug shows heartbeats; LOGLEVEL=error shows nothing of a clean handover', () => {
  expect(childLines(HANDOVER_IN_CHILD, { LOGLEVEL: 'debug' }).join('\n')).toContain('[debug] [young-one]: heartbeat sent')
  expect(childLines(HANDOVER_IN_CHILD, { LOGLEVEL: 'error' })).toEqual([])
})

test('host mode with a missing interface warns and says what it fell back to', () => {
  const lines = childLines(`
    const { HandoverPeer } = require('./index.js')
    const peer = new HandoverPeer(new Date(), { id: 'p' }, { port: 22401, networkMode: 'host', networkInterface: 'nosuch0' })
    console.log('interface:', peer._native.interfaceAddress)
  `)
  const text = lines.join('\n')
  expect(text).toMatch(/\[warning\] \[p\]: host mode: interface nosuch0 not found; falling back to the default interface/)
  expect(text).toContain('interface: null')
})

test('a custom logger receives the lines instead of stdout', async () => {
  const lines = []
  const logger = { info: (m) => lines.push(['info', m]), warn: (m) => lines.push(['warn', m]), error: (m) => lines.push(['error', m]) }
  const options = loopbackOptions(22410, { logger, logLevel: 'info', handoverCompletePath: path.join(tempDir(), 'done') })
  const peer = new HandoverPeer(new Date(1000), { id: 'custom' }, options)
  try {
    peer.startListening(async () => {
      throw new Error('reported through the logger')
    })
    await sendRaw(22410, v1(2000))
    await peer.handover
    await new Promise((r) => setTimeout(r, 50))
  } finally {
    peer.close()
  }
  expect(lines).toContainEqual(['info', '[custom] heartbeatClientSocket listening 0.0.0.0:22410'])
  expect(lines.find(([level, m]) => level === 'error' && m.includes('reported through the logger'))).toBeDefined()

  const calls = []
  const fnPeer = new HandoverPeer(new Date(), { id: 'fn' }, loopbackOptions(22411, { logger: (level, m) => calls.push([level, m]), logLevel: 'info' }))
  fnPeer.startBroadcasting()
  fnPeer.close()
  await new Promise((r) => setTimeout(r, 50))
  expect(calls.some(([level, m]) => level === 'info' && m.startsWith('[fn] ticker started'))).toBe(true)
  expect(() => new HandoverPeer(new Date(), undefined, { logger: 42 })).toThrow(TypeError)
})
