'use strict'
// listenShared: host-network instances on one TCP port. Every case runs
// test-support/shared-scenario.js in a private network namespace, with real
// instances (child processes) and real clients. Ports 47520–47523.

const path = require('node:path')
const { isolationProblem, describeUnless, spawnIsolated, usesUserNamespace } = require('../test-support/isolated')

const SCENARIO = path.join(__dirname, '..', 'test-support', 'shared-scenario.js')

function scenario(...args) {
  return scenarioOn(process.execPath, ...args)
}

/** Runs the scenario, its instances and its clients on the Node binary `node`. */
function scenarioOn(node, ...args) {
  return new Promise((resolve, reject) => {
    const child = spawnIsolated(node, [SCENARIO, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      if (code !== 0 || !line) return reject(new Error(`scenario ${args.join(' ')} exited ${code}\n${out}\n${err}`))
      resolve(JSON.parse(line.slice('RESULT '.length)))
    })
  })
}

const linux = process.platform === 'linux' ? null : 'skipped: the shared listener is Linux only'

describeUnless(linux || isolationProblem('net'), 'listenShared (one port, two instances)', () => {
  test('a joining instance gets nothing until ready, then every new connection (20 of 20)', async () => {
    const result = await scenario('steer')
    expect(result.joined).toBe('previous')
    expect(result.beforeReady).toEqual({ v1: 20 })
    expect(result.afterReady).toEqual({ v2: 20 })
  })

  test('20 consecutive handovers under a keep-alive and a non-keep-alive client: no failed request', async () => {
    const result = await scenario('load', '20')
    expect(result.outcomes.keepAlive).toEqual({ ok: expect.any(Number) })
    expect(result.outcomes.fresh).toEqual({ ok: expect.any(Number) })
    expect(result.requests).toBeGreaterThan(1000)
  }, 90_000)

  test('with net.ipv4.tcp_migrate_req on, the older instance need not drain: still no failed request', async () => {
    const result = await scenario('load', '10', 'migrate')
    expect(result.migrateRequests).toEqual([true])
    expect(result.drainMs).toEqual({ max: 0 })
    expect(result.outcomes.keepAlive).toEqual({ ok: expect.any(Number) })
    expect(result.outcomes.fresh).toEqual({ ok: expect.any(Number) })
  }, 60_000)

  test('without steering (steering: false, as where the kernel refuses it) but with tcp_migrate_req: no failed request', async () => {
    const result = await scenario('load', '10', 'nosteer', 'migrate')
    expect(result.migrateRequests).toEqual([true])
    expect(result.outcomes.keepAlive).toEqual({ ok: expect.any(Number) })
    expect(result.outcomes.fresh).toEqual({ ok: expect.any(Number) })
  }, 60_000)

  test('an instance of another service (BALENA_SERVICE_NAME) is refused the port', async () => {
    const result = await scenario('service')
    expect(result).toMatchObject({ joined: false, code: 'ERR_HANDOVER_SOCKET' })
    expect(result.message).toMatch(/shared by an instance of service "", and this is service "other"/)
  })

  // The newest Node 22+ that `npm run node-matrix` (or a run of this
  // suite's sibling, scripts/node-matrix.js) put in .cache/node: Node's own
  // reusePort exists there, listenShared must work the same.
  const newer = newestCachedNode(22)
  ;(newer ? test : test.skip)(`the same 20 handovers on Node ${newer ? newer.version : '22+ (none in .cache/node: npm run node-matrix)'}`, async () => {
    const result = await scenarioOn(newer.binary, 'load', '20')
    expect(result.outcomes.keepAlive).toEqual({ ok: expect.any(Number) })
    expect(result.outcomes.fresh).toEqual({ ok: expect.any(Number) })
  }, 90_000)

  test('the first roll-out: an old instance that does not share the port is waited for, not crashed on', async () => {
    const result = await scenario('rollout')
    expect(result.retriedMs).toBeGreaterThan(0)
    // The new instance binds within one retry of the old one closing.
    expect(result.downtimeMs).toBeLessThan(500)
    expect(result.outcomes.keepAlive.ok).toBeGreaterThan(0)
  })

  // A uid of our own choosing exists only as real root (in a user namespace
  // only our own uid is mapped).
  const asRoot = !usesUserNamespace() && spawnSyncOk('setpriv', ['--version'])
  ;(asRoot ? test : test.skip)('another user cannot join the group (the kernel refuses it)', async () => {
    const result = await scenario('stranger')
    expect(result.stranger).toEqual({ uid: 65534, joined: false })
  })
})

function newestCachedNode(major) {
  const { cachedVersions, compareVersions } = require('../scripts/node-matrix.js')
  const fs = require('node:fs')
  const version = cachedVersions()
    .filter((v) => Number(v.split('.')[0]) >= major)
    .sort(compareVersions)
    .pop()
  if (!version) return null
  const binary = path.join(__dirname, '..', '.cache', 'node', version, 'bin', 'node')
  return fs.existsSync(binary) ? { version, binary } : null
}

function spawnSyncOk(command, args) {
  return require('node:child_process').spawnSync(command, args, { stdio: 'ignore' }).status === 0
}


/** True when a plain listen (no SO_REUSEPORT) on the port works: nothing listens there any more. */
function portIsFree(port) {
  const net = require('node:net')
  return new Promise((resolve) => {
    const probe = net.createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

describeUnless(linux, 'listenShared releases the port (loopback, ports 47540–47541)', () => {
  test('close() drains, closes the server and lets go of the socket', async () => {
    const http = require('node:http')
    const { listenShared } = require('../index.js')
    const server = http.createServer((q, s) => s.end('ok'))
    const shared = listenShared(server, { port: 47540, host: '127.0.0.1', logLevel: 'error' })
    await shared.listening
    expect(await portIsFree(47540)).toBe(false)
    await shared.close()
    expect(shared.stats().closed).toBe(true)
    expect(await portIsFree(47540)).toBe(true)
  })

  test('a worker whose environment ends leaves no listener behind', async () => {
    const { Worker } = require('node:worker_threads')
    const index = JSON.stringify(path.join(__dirname, '..', 'index.js'))
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads')
       const { listenShared } = require(${index})
       const server = require('node:http').createServer()
       listenShared(server, { port: 47541, host: '127.0.0.1', logLevel: 'error' }).listening.then(() => parentPort.postMessage('listening'))`,
      { eval: true },
    )
    await new Promise((resolve) => worker.once('message', resolve))
    expect(await portIsFree(47541)).toBe(false)
    await worker.terminate()
    expect(await portIsFree(47541)).toBe(true)
  })
})
