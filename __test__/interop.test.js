'use strict'
// Interoperability with the real original (`handover-lib@0.0.10` from the
// npm registry) in both directions. The original sends through the default
// route whatever it is told, so every pair runs in a private network
// namespace of its own (root only).

const path = require('node:path')
const { namespacesAvailable, spawnIsolated } = require('../test-support/isolated')

const PAIR = path.join(__dirname, '..', 'test-support', 'pair.js')
const describeIfRoot = namespacesAvailable() ? describe : describe.skip

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

describeIfRoot('hand-over with the JS original (private network namespace)', () => {
  test('original old instance, our new instance: the original hands over', async () => {
    const result = await runPair({ port: 1536, old: { impl: 'original' }, new: { impl: 'ours' } })
    expect(result.error).toBeUndefined()
    expect(result.oldCallback).toBe(true)
    expect(result.shuttingDownInCallback).toBe(true)
    expect(result.oldCallbacks).toBe(1)
    expect(result.newCallback).toBe(false)
  }, 30_000)

  test('our old instance, original new instance: ours hands over', async () => {
    const result = await runPair({ port: 1536, old: { impl: 'ours' }, new: { impl: 'original' } })
    expect(result.error).toBeUndefined()
    expect(result.oldCallback).toBe(true)
    expect(result.shuttingDownInCallback).toBe(true)
    expect(result.oldCallbacks).toBe(1)
    expect(result.newCallback).toBe(false)
  }, 30_000)

  test('two instances of ours in two processes: the old one hands over once, the new one survives', async () => {
    const result = await runPair({ port: 1536, old: { impl: 'ours' }, new: { impl: 'ours' } })
    expect(result.error).toBeUndefined()
    expect(result.oldCallback).toBe(true)
    expect(result.oldCallbacks).toBe(1)
    expect(result.newCallback).toBe(false)
  }, 30_000)

  test('ours scoped to a service still honours the unscoped original', async () => {
    const result = await runPair({
      port: 1536,
      old: { impl: 'ours', options: { serviceName: 'api' } },
      new: { impl: 'original' },
    })
    expect(result.oldCallback).toBe(true)
  }, 30_000)
})
