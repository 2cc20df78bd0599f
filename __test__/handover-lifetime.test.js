'use strict'
// A handover that has begun completes, whatever close(), a signal handler
// or the callback does: the old instance's process stays alive from the
// moment its callback is called until the complete file is written and the
// report delivered. Each case runs the old instance in a standalone child
// process, not under Jest (whose own timers would keep any loop alive), and
// the test plays the younger instance with raw announcements on loopback.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')

const { loopbackOptions, sendRaw, v1, waitFor, tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

/**
 * The old instance: the README's quick start (an HTTP server and a peer),
 * with `callback` as its shutdown callback. It prints one JSON line per
 * event: listening, callback, handover (the report).
 */
function oldInstance({ port, completePath, callback, options = {}, prelude = '' }) {
  return `
    const http = require('node:http')
    const { HandoverPeer } = require('./index.js')
    const say = (event, extra) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\\n')
    const options = ${JSON.stringify(loopbackOptions(port, { handoverCompletePath: completePath, ...options }))}
    const peer = new HandoverPeer(new Date(Date.now() - 60_000), { id: 'old' }, options)
    const server = http.createServer((request, response) => response.end('ok'))
    ${prelude}
    peer.on('handover', (report) => say('handover', report))
    peer.startListening(${callback})
    server.listen(0, '127.0.0.1', () => {
      peer.startBroadcasting()
      say('listening')
    })
  `
}

/** Runs the old instance, hands over to it, and collects its lines and exit. */
async function handOver(scenario, { afterCallback } = {}) {
  const child = spawn(process.execPath, ['-e', oldInstance(scenario)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const events = []
  let stderr = ''
  child.stderr.on('data', (chunk) => (stderr += chunk))
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line))
    } catch {
      // a log line
    }
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  try {
    await waitFor(() => events.some((e) => e.event === 'listening'), 10_000, 'the old instance to listen')
    // A younger instance announces until the old one's callback runs.
    await waitFor(
      async () => {
        await sendRaw(scenario.port, v1(Date.now()))
        return events.some((e) => e.event === 'callback')
      },
      10_000,
      'the shutdown callback',
    )
    if (afterCallback) afterCallback(child)
    const exit = await exited
    return { ...exit, events, stderr }
  } finally {
    clearTimeout(killer)
    child.kill('SIGKILL')
  }
}

function expectCompleted(result, completePath) {
  expect(result.signal).toBeNull() // it exited by itself, not by the test's kill
  expect(result.code).toBe(0)
  const report = result.events.find((e) => e.event === 'handover')
  expect(report).toBeDefined()
  expect(report.completeFile).toBe(completePath)
  expect(fs.readFileSync(completePath, 'utf8')).toMatch(/^Shutting down at /)
  return report
}

let folder
beforeAll(() => {
  folder = tempDir('handover-lifetime-')
})
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }))

test('the quick start with close() at the end of its async callback still hands over', async () => {
  const completePath = path.join(folder, 'quick-start')
  const result = await handOver({
    port: 47_410,
    completePath,
    callback: `async () => {
      say('callback')
      await new Promise((resolve) => server.close(resolve))
      peer.close()
    }`,
  })
  const report = expectCompleted(result, completePath)
  expect(report.callbackError).toBeNull()
}, 30_000)

test('a synchronous callback that calls close() still hands over', async () => {
  const completePath = path.join(folder, 'sync')
  const result = await handOver({
    port: 47_411,
    completePath,
    callback: `() => {
      say('callback')
      server.close()
      peer.close()
    }`,
  })
  expectCompleted(result, completePath)
}, 30_000)

test('a callback that never settles and calls close() hands over at callbackTimeoutMs', async () => {
  const completePath = path.join(folder, 'timeout')
  const result = await handOver({
    port: 47_412,
    completePath,
    options: { callbackTimeoutMs: 300 },
    callback: `() => {
      say('callback', { at: Date.now() })
      server.close()
      peer.close()
      return new Promise(() => {})
    }`,
  })
  const report = expectCompleted(result, completePath)
  expect(report.callbackTimedOut).toBe(true)
}, 30_000)

test('a SIGTERM handler that calls close() during a 2 s callback does not lose the handover', async () => {
  const completePath = path.join(folder, 'sigterm')
  const result = await handOver(
    {
      port: 47_413,
      completePath,
      prelude: `process.on('SIGTERM', () => { say('sigterm'); server.close(); peer.close() })`,
      callback: `() => {
        say('callback')
        return new Promise((resolve) => setTimeout(resolve, 2000))
      }`,
    },
    { afterCallback: (child) => child.kill('SIGTERM') },
  )
  expectCompleted(result, completePath)
  expect(result.events.map((e) => e.event)).toEqual(['listening', 'callback', 'sigterm', 'handover'])
}, 30_000)

test('close() does not release the process while the callback is still under way', async () => {
  const completePath = path.join(folder, 'slow-settle')
  // The callback settles from an unreferenced timer: only the handover
  // itself can keep the process alive until then.
  const result = await handOver({
    port: 47_414,
    completePath,
    callback: `() => {
      say('callback')
      server.close()
      peer.close()
      return new Promise((resolve) => setTimeout(resolve, 500).unref())
    }`,
  })
  expectCompleted(result, completePath)
}, 30_000)
