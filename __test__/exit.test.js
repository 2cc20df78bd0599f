'use strict'
// Nothing native keeps a Node process alive once every object is closed,
// and an active peer keeps it alive like the original's sockets do. Each
// case runs in a child process, since Jest's own handles would hide a leak.
// Ports 22300–22399.

const { spawn } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

/** Runs `source` in a child node; resolves with its exit code and how long it lived after `mark`. */
function run(source, { killAfterMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', source], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let markedAt = null
    child.stdout.on('data', (d) => {
      out += d
      if (markedAt === null && out.includes('MARK')) markedAt = Date.now()
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, out, afterMarkMs: markedAt === null ? null : Date.now() - markedAt })
    })
  })
}

const PRELUDE = `
  const { HandoverPeer, HandoverStatus } = require('./index.js')
  const opts = (port, extra) => ({ port, networkMode: 'host', networkInterface: 'lo', logLevel: 'error', ...extra })
`

test('a process that creates, uses and closes every object exits by itself within 1 s', async () => {
  const result = await run(`${PRELUDE}
    const peer = new HandoverPeer(new Date(), undefined, opts(22300))
    peer.startListening(async () => {})
    peer.startBroadcasting()
    const status = new HandoverStatus(new Date(), 'api', ['10.0.0.1'], undefined, opts(22301))
    status.startListening(() => {})
    status.startBroadcastingServiceUp()
    status.startBroadcastingServiceDown()
    setTimeout(() => {
      peer.close()
      status.close()
      console.log('MARK')
    }, 300)
  `)
  expect(result.code).toBe(0)
  expect(result.afterMarkMs).not.toBeNull()
  expect(result.afterMarkMs).toBeLessThan(1000)
})

test.each([
  ['listening peer', `new HandoverPeer(new Date(), undefined, opts(22310)).startListening(async () => {})`],
  ['broadcasting peer', `new HandoverPeer(new Date(), undefined, opts(22311)).startBroadcasting()`],
  ['status listener', `new HandoverStatus(new Date(), 'a', [], undefined, opts(22312)).startListening(() => {})`],
  ['status UP ticker', `new HandoverStatus(new Date(), 'a', [], undefined, opts(22313)).startBroadcastingServiceUp()`],
])('a %s keeps the process alive, like the original', async (_, body) => {
  const result = await run(`${PRELUDE}
    ${body}
    console.log('MARK')
  `, { killAfterMs: 1500 })
  expect(result.signal).toBe('SIGKILL')
})

test('a constructed but unused peer does not keep the process alive', async () => {
  const result = await run(`${PRELUDE}
    new HandoverPeer(new Date(), undefined, opts(22320))
    new HandoverStatus(new Date(), 'a', [], undefined, opts(22321))
    console.log('MARK')
  `)
  expect(result.code).toBe(0)
})

test('an old instance exits by itself once it has handed over (nothing else running)', async () => {
  const result = await run(`${PRELUDE}
    const fs = require('node:fs'), os = require('node:os'), path = require('node:path')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-exit-'))
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
    const old = new HandoverPeer(new Date(1000), undefined, opts(22330, { handoverCompletePath: path.join(dir, 'done') }))
    old.startListening(async () => {})
    old.startBroadcasting()
    const young = new HandoverPeer(new Date(), undefined, opts(22330))
    young.startBroadcasting()
    old.handover.then((r) => {
      young.close()
      console.log('MARK', fs.existsSync(r.completeFile))
    })
  `)
  expect(result.out).toContain('MARK true')
  expect(result.code).toBe(0)
  expect(result.afterMarkMs).toBeLessThan(1000)
})

test('a worker thread that ends takes its peers with it: no announcements after terminate()', async () => {
  const result = await run(`
    const { Worker } = require('node:worker_threads')
    const dgram = require('node:dgram')
    const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    let heard = 0
    listener.on('message', () => heard++)
    listener.bind(22340, () => {
      listener.addMembership('239.192.16.16', '127.0.0.1')
      const worker = new Worker(\`
        const { parentPort } = require('node:worker_threads')
        const { HandoverPeer } = require(\${JSON.stringify(require.resolve('./index.js'))})
        const peer = new HandoverPeer(new Date(), undefined, { port: 22340, networkMode: 'host', networkInterface: 'lo', heartbeatIntervalMs: 20, logLevel: 'error' })
        peer.startListening(async () => {})
        peer.startBroadcasting()
        parentPort.postMessage('started')
      \`, { eval: true })
      worker.once('message', () => setTimeout(async () => {
        await worker.terminate()
        await new Promise((r) => setTimeout(r, 100))
        const before = heard
        await new Promise((r) => setTimeout(r, 300))
        console.log('MARK', before > 0, heard - before)
        listener.close()
      }, 200))
    })
  `)
  expect(result.out).toContain('MARK true 0')
  expect(result.code).toBe(0)
})

// The listener and the announcement schedule live on the worker's own event
// loop (src/uv.rs): a worker must be able to end with them in every state.
const WORKER_PRELUDE = `
  const { Worker } = require('node:worker_threads')
  const fs = require('node:fs'), os = require('node:os'), path = require('node:path')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-exit-'))
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  const inWorker = (source) => new Worker(
    'const { parentPort } = require("node:worker_threads");' +
    'const { HandoverPeer } = require(' + JSON.stringify(require.resolve('./index.js')) + ');' +
    'const opts = (port, extra) => ({ port, networkMode: "host", networkInterface: "lo", logLevel: "error", handoverCompletePath: ' + JSON.stringify(dir) + ' + "/done", ...extra });' +
    source, { eval: true })
`

test('a worker whose old peer hands over ends by itself, and so does the process', async () => {
  const result = await run(`${WORKER_PRELUDE}
    const worker = inWorker(\`
      const old = new HandoverPeer(new Date(1000), undefined, opts(22350))
      old.startListening(async () => {})
      old.startBroadcasting()
      const young = new HandoverPeer(new Date(), undefined, opts(22350))
      young.startBroadcasting()
      old.handover.then((report) => { young.close(); parentPort.postMessage(report.completeFile !== null) })
    \`)
    worker.on('message', (written) => console.log('MARK', written))
    worker.on('exit', (code) => console.log('worker exit', code))
  `)
  expect(result.out).toContain('MARK true')
  expect(result.out).toContain('worker exit 0')
  expect(result.code).toBe(0)
  expect(result.afterMarkMs).toBeLessThan(1000)
})

test('terminating a worker in the middle of a handover, and while it announces, neither hangs nor crashes', async () => {
  const result = await run(`${WORKER_PRELUDE}
    const worker = inWorker(\`
      const old = new HandoverPeer(new Date(1000), undefined, opts(22351))
      old.startListening(() => new Promise(() => {})) // never settles
      const announcing = new HandoverPeer(new Date(2000), undefined, opts(22352, { heartbeatIntervalMs: 20 }))
      announcing.startBroadcasting()
      const young = new HandoverPeer(new Date(), undefined, opts(22351))
      young.startBroadcasting()
      old.on('shuttingDown', () => setTimeout(() => parentPort.postMessage('handing over'), 20))
    \`)
    worker.once('message', async (state) => {
      console.log('MARK', state)
      console.log('terminated', await worker.terminate())
    })
  `)
  expect(result.out).toContain('MARK handing over')
  expect(result.out).toContain('terminated 1')
  expect(result.signal).toBeNull()
  expect(result.code).toBe(0)
  expect(result.afterMarkMs).toBeLessThan(1000)
})

// A worker whose environment ends before its shutdown callback ran or
// settled did not shut down in order: its peer must not write the complete
// file (the supervisor would kill the container for a service that is gone
// half-way), and it says so instead of blaming the callback.
test.each([
  [
    'busy when the younger instance is heard, then terminated',
    22360,
    // Busy from before the announcement is sent until after terminate():
    // the worker's loop never gets to read it. (Made busy on a message
    // instead, the worker could read the socket before that message.)
    `old.startListening(async () => {})
     parentPort.postMessage('ready')
     const end = Date.now() + 3000
     while (Date.now() < end);`,
    `setTimeout(() => worker.terminate(), 300)`,
  ],
  [
    'terminated inside its callback',
    22361,
    `old.startListening(() => { parentPort.postMessage('called'); return new Promise(() => {}) })
     parentPort.postMessage('ready')`,
    `worker.on('message', (m) => m === 'called' && worker.terminate())`,
  ],
  [
    'calling process.exit() inside its callback',
    22362,
    `old.startListening(() => process.exit(0))
     parentPort.postMessage('ready')`,
    ``,
  ],
])('a worker %s writes no complete file and says its environment ended', async (_, port, inside, outside) => {
  const result = await run(`${PRELUDE}${WORKER_PRELUDE}
    const worker = inWorker(\`
      const old = new HandoverPeer(new Date(1000), undefined, opts(${port}, { logLevel: 'warning' }))
      ${inside.replace(/`/g, '\\`')}
    \`)
    const young = new HandoverPeer(new Date(), undefined, opts(${port}))
    worker.once('message', () => {
      young.startBroadcasting()
      ${outside}
    })
    worker.on('exit', () => setTimeout(() => {
      young.close()
      console.log('MARK written', fs.existsSync(path.join(dir, 'done')))
    }, 500))
  `)
  expect(result.out).toContain('MARK written false')
  expect(result.out).toContain('JS environment ended')
  expect(result.out).not.toContain('shutdownCallback failed')
  expect(result.signal).toBeNull()
  expect(result.code).toBe(0)
})
