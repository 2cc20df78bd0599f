'use strict'
// Inputs handover-lib@0.0.10 accepted are accepted here too, and do what
// they did there: a startedAt that is a number, a bigint, a string of digits
// or an object with a numeric valueOf(); a context whose id is not a string;
// and the writable `shuttingDown` field. Every scenario runs against the
// original (`require('handover-lib')`) and against ours (`require('..')`),
// and both must behave the same, except where a difference is named below.
//
// Constructing the original sends nothing, so that runs in this process.
// Anything where the original listens or sends runs in a child process in a
// private network namespace (the original always uses the default route;
// see test-support/isolated.js), and, where a handover may begin, with a
// private /tmp as well, so that no complete file can land on this machine.
// Ports 47420–47439 (inside a namespace the port is private anyway).

const { spawn } = require('node:child_process')
const path = require('node:path')
const { SETUP, unshareArgs, spawnIsolated, isolationProblem, describeUnless } = require('../test-support/isolated')

const ROOT = path.join(__dirname, '..')
const IMPLS = ['original', 'ours']
const STARTED_AT_MS = 1_700_000_000_000

/** The startedAt kinds handover-lib took (it read `BigInt(typeof t === 'string' ? t : t.valueOf())`). Same table in CHILD. */
const STARTED_AT = {
  'a number': (ms) => ms,
  'a bigint': (ms) => BigInt(ms),
  'a string of digits': (ms) => String(ms),
  'an object with a numeric valueOf()': (ms) => ({ valueOf: () => ms }),
}

const load = (impl) => (impl === 'original' ? require('handover-lib') : require('..'))

/**
 * Constructs a peer of `impl` in this process with SHUTDOWN_PORT set (both
 * read it at construction), and releases what it holds. Nothing is sent.
 */
function construct(impl, startedAt, context) {
  const saved = process.env.SHUTDOWN_PORT
  process.env.SHUTDOWN_PORT = '47420'
  try {
    const peer = new (load(impl).HandoverPeer)(startedAt, context)
    return { startedAt: peer.startedAt, context: peer.context, peer }
  } finally {
    if (saved === undefined) delete process.env.SHUTDOWN_PORT
    else process.env.SHUTDOWN_PORT = saved
  }
}

function release(peer) {
  if (typeof peer.close === 'function') return peer.close()
  // The original's two sockets were created, never bound.
  peer.heartbeatSenderSocket.close()
  peer.heartbeatClientSocket.close()
}

// The child: one scenario against one implementation, inside the namespace,
// its working directory the repository. It prints its result as one line
// starting with RESULT; everything else on stdout is log lines.
const RESULT = '@@result '
const CHILD = `
'use strict'
const dgram = require('node:dgram')
const spec = JSON.parse(process.argv[1])
const { HandoverPeer } = require(spec.impl === 'original' ? 'handover-lib' : './index.js')
const GROUP = '239.192.16.16'
const STARTED_AT = {
  'a number': (ms) => ms,
  'a bigint': (ms) => BigInt(ms),
  'a string of digits': (ms) => String(ms),
  'an object with a numeric valueOf()': (ms) => ({ valueOf: () => ms }),
  'a Date': (ms) => new Date(ms),
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const finish = (result) => {
  process.stdout.write('\\n${RESULT}' + JSON.stringify(result) + '\\n')
  process.exit(0)
}
async function until(predicate, ms) {
  for (const end = Date.now() + ms; !predicate() && Date.now() < end; ) await sleep(10)
  return predicate()
}

/** A younger instance: 9-byte v1 announcements, stamped now, every 50 ms for ms (or until stop()). */
async function announceYounger(socket, ms, stop = () => false) {
  for (const end = Date.now() + ms; Date.now() < end && !stop(); ) {
    const packet = Buffer.alloc(9)
    packet[0] = 1
    packet.writeBigInt64BE(BigInt(Date.now()), 1)
    await new Promise((resolve, reject) => socket.send(packet, spec.port, GROUP, (e) => (e ? reject(e) : resolve())))
    await sleep(50)
  }
}

const scenarios = {
  /** Broadcasts (after a refused start while shuttingDown, when spec.hold); a listener decodes what comes. */
  async announce() {
    const packets = []
    const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    listener.on('message', (message) => packets.push(message))
    await new Promise((resolve) => listener.bind(spec.port, resolve))
    listener.addMembership(GROUP)
    const startedAt = STARTED_AT[spec.startedAt](spec.ms)
    const peer = new HandoverPeer(startedAt, spec.context)
    const result = {}
    if (spec.hold) {
      peer.shuttingDown = true
      peer.startBroadcasting()
      await sleep(1000)
      result.receivedWhileShuttingDown = packets.length
      peer.shuttingDown = false
    }
    peer.startBroadcasting()
    await until(() => packets.length > 0, 3000)
    result.timestamp = packets.length > 0 ? packets[0].readBigInt64BE(1).toString() : null
    result.startedAtKept = peer.startedAt === startedAt
    finish(result)
  },

  /**
   * An old instance listens with shuttingDown set; a younger one announces.
   * Then shuttingDown = false, and it announces again. With spec.again,
   * shuttingDown = false once more while the (never settling) callback runs.
   */
  async hold() {
    const sender = dgram.createSocket('udp4')
    const peer = new HandoverPeer(new Date(Date.now() - 60_000), { id: 'old' })
    let calls = 0
    const result = {}
    peer.shuttingDown = true
    peer.startListening(() => {
      calls++
      return new Promise(() => {})
    })
    await sleep(300) // the original binds and joins asynchronously
    await announceYounger(sender, 1000)
    result.callsWhileShuttingDown = calls
    result.shuttingDownWhileSet = peer.shuttingDown
    peer.shuttingDown = false
    result.shuttingDownOnceCleared = peer.shuttingDown
    await announceYounger(sender, 3000, () => calls > 0)
    await announceYounger(sender, 500)
    result.callsOnceCleared = calls
    result.shuttingDownAfterCallback = peer.shuttingDown
    if (spec.again) {
      peer.shuttingDown = false
      result.again = { shuttingDownOnceCleared: peer.shuttingDown }
      await announceYounger(sender, 1000)
      result.again.calls = calls
      result.again.shuttingDown = peer.shuttingDown
    }
    finish(result)
  },

  /** Starts broadcasting, so that a line carrying the context is logged. */
  async context() {
    const peer = new HandoverPeer(new Date(), spec.context)
    peer.startBroadcasting()
    await sleep(500)
    finish({ context: peer.context })
  },
}

scenarios[spec.scenario]()
`

/**
 * Runs CHILD for `impl` in a private network namespace (and a private
 * /tmp when `privateTmp`): its exit code, its RESULT (or null) and all it
 * wrote, stdout and stderr.
 */
function runChild(impl, spec, { privateTmp = false } = {}) {
  const port = 47_421
  const argv = ['-e', CHILD, JSON.stringify({ port, ...spec, impl })]
  const env = { ...process.env, SHUTDOWN_PORT: String(port), REPO: ROOT }
  let child
  if (privateTmp) {
    // As complete-file.test.js: the repository may live under /tmp, so it is bound to /mnt before /tmp is hidden.
    const setup = SETUP.replace(' && exec "$0" "$@"', '')
    const script = `mount --rbind "$REPO" /mnt && mount -t tmpfs tmpfs /tmp && cd /mnt && ${setup} && exec "$0" "$@"`
    child = spawn('unshare', [...unshareArgs('--mount', '--net'), 'sh', '-c', script, process.execPath, ...argv], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } else {
    child = spawnIsolated(process.execPath, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  }
  return new Promise((resolve, reject) => {
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.on('error', reject)
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      const line = output.split('\n').find((l) => l.startsWith(RESULT))
      resolve({ code, signal, result: line ? JSON.parse(line.slice(RESULT.length)) : null, output })
    })
  })
}

/** The same scenario against both, at the same time (each in a namespace of its own). */
async function runBoth(spec, options) {
  const [original, ours] = await Promise.all(IMPLS.map((impl) => runChild(impl, spec, options)))
  return { original, ours }
}

/** The result of a run that finished; else a failure showing what the child wrote. */
function resultOf(run, label) {
  if (!run.result) throw new Error(`${label}: no result (exit ${run.code}, signal ${run.signal})\n${run.output.slice(-3000)}`)
  return run.result
}

describe('startedAt as handover-lib took it', () => {
  test.each(Object.keys(STARTED_AT))('%s: both construct, and keep the very value', (kind) => {
    for (const impl of IMPLS) {
      const startedAt = STARTED_AT[kind](STARTED_AT_MS)
      const { peer, startedAt: kept } = construct(impl, startedAt)
      try {
        expect(kept).toBe(startedAt)
      } finally {
        release(peer)
      }
    }
  })
})

describe('a context handover-lib took', () => {
  test('{ id: 42 }: both construct and keep the very object', () => {
    const context = { id: 42 }
    const original = construct('original', new Date(), context)
    const ours = construct('ours', new Date(), context)
    release(original.peer)
    release(ours.peer)
    expect(original.context).toBe(context)
    expect(ours.context).toBe(context)
  })

  test("'ctx': both construct and keep the string", () => {
    const original = construct('original', new Date(), 'ctx')
    const ours = construct('ours', new Date(), 'ctx')
    release(original.peer)
    release(ours.peer)
    expect(original.context).toBe('ctx')
    expect(ours.context).toBe('ctx')
  })
})

describe('shuttingDown, writable as in handover-lib', () => {
  test('assigning it in strict code works in both and reads back', () => {
    for (const impl of IMPLS) {
      const { peer } = construct(impl, new Date())
      try {
        peer.shuttingDown = true
        expect(peer.shuttingDown).toBe(true)
        peer.shuttingDown = false
        expect(peer.shuttingDown).toBe(false)
      } finally {
        release(peer)
      }
    }
  })
})

describeUnless(isolationProblem('net'), 'with the original on the network (private network namespace)', () => {
  test.each([...Object.keys(STARTED_AT), 'a Date'])(
    'startedAt as %s: both announce that timestamp',
    async (kind) => {
      const { original, ours } = await runBoth({ scenario: 'announce', startedAt: kind, ms: STARTED_AT_MS })
      const expected = { timestamp: String(STARTED_AT_MS), startedAtKept: true }
      expect(resultOf(original, 'original')).toEqual(expected)
      expect(resultOf(ours, 'ours')).toEqual(expected)
    },
    30_000,
  )

  test('context { id: 42 }: both log the ticker start under [42]', async () => {
    const { original, ours } = await runBoth({ scenario: 'context', context: { id: 42 } })
    expect(resultOf(original, 'original').context).toEqual({ id: 42 })
    expect(resultOf(ours, 'ours').context).toEqual({ id: 42 })
    for (const run of [original, ours]) expect(run.output).toMatch(/\[42\]: .*ticker started/)
  }, 30_000)

  // The one difference: the original's logger (@balena/jellyfish-logger)
  // refuses a context that is not an object, so its process dies at the first
  // line it logs after construction. Ours logs the string as the id.
  test("context 'ctx': the original dies at its first log line (LoggerNoContext); ours logs under [ctx]", async () => {
    const { original, ours } = await runBoth({ scenario: 'context', context: 'ctx' })
    expect(original.result).toBeNull()
    expect(original.code).not.toBe(0)
    expect(original.output).toMatch(/LoggerNoContext: Missing context/)
    expect(resultOf(ours, 'ours').context).toEqual('ctx')
    expect(ours.output).toMatch(/\[ctx\]: .*ticker started/)
  }, 30_000)

  test('shuttingDown = true: startBroadcasting() sends nothing, and says why; once false, it starts', async () => {
    const spec = { scenario: 'announce', startedAt: 'a Date', ms: Date.now(), hold: true }
    const { original, ours } = await runBoth(spec)
    const expected = { receivedWhileShuttingDown: 0, timestamp: String(spec.ms), startedAtKept: true }
    expect(resultOf(original, 'original')).toEqual(expected)
    expect(resultOf(ours, 'ours')).toEqual(expected)
    for (const run of [original, ours]) expect(run.output).toContain("Not starting ticker because we're shutting down")
  }, 30_000)
})

describeUnless(isolationProblem('net', 'mount'), 'shuttingDown with younger instances (private network namespace and /tmp)', () => {
  test('shuttingDown = true: a younger instance is ignored; once false, it is handed over to', async () => {
    const { original, ours } = await runBoth({ scenario: 'hold' }, { privateTmp: true })
    const expected = {
      callsWhileShuttingDown: 0,
      shuttingDownWhileSet: true,
      shuttingDownOnceCleared: false,
      callsOnceCleared: 1,
      shuttingDownAfterCallback: true,
    }
    expect(resultOf(original, 'original')).toEqual(expected)
    expect(resultOf(ours, 'ours')).toEqual(expected)
  }, 30_000)

  // The defect fix: clearing the flag while the callback runs let the
  // original begin a second handover (a second call of the callback) at the
  // next younger announcement. Ours has begun one; it stays begun.
  test('shuttingDown = false during a handover: the original calls the callback again, ours does not', async () => {
    const { original, ours } = await runBoth({ scenario: 'hold', again: true }, { privateTmp: true })
    expect(resultOf(original, 'original').again).toEqual({ shuttingDownOnceCleared: false, calls: 2, shuttingDown: true })
    expect(resultOf(ours, 'ours').again).toEqual({ shuttingDownOnceCleared: true, calls: 1, shuttingDown: true })
  }, 30_000)
})
