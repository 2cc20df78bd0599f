'use strict'
// Interoperability with the real original (`handover-lib@0.0.10` from the
// npm registry) in both directions. The original sends through the default
// route whatever it is told, so every pair runs in a private network
// namespace of its own (as root, or inside a user namespace: see
// test-support/isolated.js).

const path = require('node:path')
const { spawnIsolated, isolationProblem, describeUnless } = require('../test-support/isolated')

const PAIR = path.join(__dirname, '..', 'test-support', 'pair.js')

function runPair(spec) {
  return new Promise((resolve, reject) => {
    const child = spawnIsolated(process.execPath, [PAIR, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', () => {
      const last = out.trim().split('\n').pop()
      try {
        resolve(JSON.parse(last))
      } catch {
        reject(new Error(`no result from pair.js: ${out}\n${err}`))
      }
    })
  })
}

/** The old instance ran its callback exactly once, already shutting down; the new one survived. */
function expectOldHandedOverOnce(result) {
  expect(result.error).toBeUndefined()
  expect(result.oldCallback).toBe(true)
  expect(result.shuttingDownInCallback).toBe(true)
  expect(result.oldCallbacks).toBe(1)
  expect(result.newCallback).toBe(false)
}

describeUnless(isolationProblem('net'), 'hand-over with the JS original (private network namespace)', () => {
  test.each([
    ['original old instance, our new instance: the original hands over', 'original', 'ours'],
    ['our old instance, original new instance: ours hands over', 'ours', 'original'],
    ['two instances of ours in two processes: the old one hands over once, the new one survives', 'ours', 'ours'],
  ])('%s', async (_, oldImpl, newImpl) => {
    expectOldHandedOverOnce(await runPair({ port: 1536, old: { impl: oldImpl }, new: { impl: newImpl } }))
  }, 30_000)

  test('ours scoped to a service still honours the unscoped original', async () => {
    const result = await runPair({
      port: 1536,
      old: { impl: 'ours', options: { serviceName: 'api' } },
      new: { impl: 'original' },
    })
    expectOldHandedOverOnce(result)
  }, 30_000)
})
