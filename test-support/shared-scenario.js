'use strict'
// Shared-listener scenarios, run inside a private network namespace (see
// __test__/shared-listener.test.js): real instances (shared-instance.js) in
// child processes on one port, real clients counting every outcome. Prints
// one JSON line with the figures.
// argv: scenario [handovers] [plain]
//   steer     — where 20 connections go before and after the younger instance is ready
//   stranger  — another user joining the port's group
//   rollout   — the first roll-out: the old instance listens without sharing
//   service   — an instance of another service joining the port
//   load      — N handovers under a keep-alive and a non-keep-alive client
//               ('plain': every instance listens without sharing, the baseline;
//               'nosteer': shared without cBPF steering; a last 'migrate'
//               turns net.ipv4.tcp_migrate_req on in the namespace)

const { spawn, spawnSync } = require('node:child_process')
const http = require('node:http')
const path = require('node:path')

const PORT = 47520
const HANDOVER_PORT = 47521
const INSTANCE = path.join(__dirname, 'shared-instance.js')
const node = process.execPath

function start(version, { mode = 'shared', handoverPort = HANDOVER_PORT } = {}) {
  const child = spawn(node, [INSTANCE, String(PORT), String(handoverPort), version, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  const waiters = []
  child.stdout.on('data', (data) => {
    out += data
    for (const w of waiters.splice(0)) if (!w()) waiters.push(w)
  })
  const waitFor = (word) =>
    new Promise((resolve) => {
      const check = () => {
        const line = out.split('\n').find((l) => l.startsWith(`${word} ${version}`))
        if (!line) return false
        const json = line.slice(`${word} ${version}`.length).trim()
        resolve(json ? JSON.parse(json) : {})
        return true
      }
      if (!check()) waiters.push(check)
    })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  return { child, ready: waitFor('READY'), handed: waitFor('HANDED'), exited }
}

/** One request on a fresh connection: resolves with the body or the error's code. */
function get(agent) {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint()
    const request = http.get({ host: '127.0.0.1', port: PORT, path: '/', agent }, (response) => {
      let body = ''
      response.on('data', (d) => (body += d))
      response.on('end', () => resolve({ body, ms: Number(process.hrtime.bigint() - started) / 1e6 }))
      response.on('error', (e) => resolve({ error: e.code || e.message }))
    })
    request.on('error', (e) => resolve({ error: e.code || e.message, ms: Number(process.hrtime.bigint() - started) / 1e6 }))
  })
}

async function count(n) {
  const seen = {}
  for (let i = 0; i < n; i++) {
    const { body, error } = await get(false)
    const key = body || error
    seen[key] = (seen[key] || 0) + 1
  }
  return seen
}

async function steer() {
  const v1 = start('v1', { handoverPort: HANDOVER_PORT })
  await v1.ready
  // v2 on another handover port: it never hands over, so both stay.
  const v2 = start('v2', { mode: 'joined', handoverPort: HANDOVER_PORT + 2 })
  const joined = await v2.ready
  const beforeReady = await count(20)
  v2.child.kill('SIGUSR2') // asks v2 to broadcast (and steer)
  await new Promise((r) => setTimeout(r, 200))
  const afterReady = await count(20)
  v1.child.kill()
  v2.child.kill()
  return { joined: joined.steering, beforeReady, afterReady }
}

function stranger() {
  const v1 = start('v1')
  return v1.ready.then(() => {
    const source = `const b = require(${JSON.stringify(path.join(__dirname, '..', 'binding.js'))});
      const l = b.openSharedListener('127.0.0.1', ${PORT}, 16, '', true, 'stranger', 'error');
      console.log(JSON.stringify({ uid: process.getuid(), joined: l !== null }))`
    const result = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', node, '-e', source], {
      encoding: 'utf8',
    })
    v1.child.kill()
    return { stranger: result.stdout.trim() ? JSON.parse(result.stdout) : { error: result.stderr } }
  })
}

/** An instance of another service (BALENA_SERVICE_NAME) of the same user. */
function otherService() {
  const v1 = start('v1')
  return v1.ready.then(() => {
    const source = `const { listenShared } = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))});
      try {
        listenShared(require('node:net').createServer(), { port: ${PORT}, host: '127.0.0.1', logLevel: 'error' })
        console.log(JSON.stringify({ joined: true }))
      } catch (error) {
        console.log(JSON.stringify({ joined: false, code: error.code, message: error.message }))
      }
      process.exit(0)`
    const env = { ...process.env, BALENA_SERVICE_NAME: 'other' }
    const result = spawnSync(node, ['-e', source], { encoding: 'utf8', env })
    v1.child.kill()
    return JSON.parse(result.stdout.trim().split('\n').pop())
  })
}

/** Clients that run until stopped, counting every outcome. */
function clients() {
  const outcomes = { keepAlive: {}, fresh: {} }
  const latencies = []
  let running = true
  const errors = { first: null, last: null, at: [] }
  const tally = (kind, r) => {
    const key = r.error ? `error:${r.error}` : 'ok'
    if (r.error) {
      errors.first = errors.first || Date.now()
      errors.last = Date.now()
      errors.at.push(Date.now())
    }
    outcomes[kind][key] = (outcomes[kind][key] || 0) + 1
    if (!r.error) latencies.push({ at: Date.now() - r.ms, ms: r.ms })
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const loop = async (kind, a) => {
    while (running) tally(kind, await get(a))
  }
  const done = Promise.all([loop('keepAlive', agent), loop('fresh', false)])
  return {
    outcomes,
    latencies,
    errors,
    stop: async () => {
      running = false
      await done
      agent.destroy()
    },
  }
}

function p99(samples) {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b)
  return sorted.length ? sorted[Math.floor(sorted.length * 0.99)] : null
}

async function load(handovers, mode) {
  let current = start('v1', { mode })
  await current.ready
  const c = clients()
  const times = []
  const windows = []
  const drains = []
  const migrate = new Set()
  for (let i = 2; i <= handovers + 1; i++) {
    const t0 = Date.now()
    const next = start(`v${i}`, { mode })
    const [handed] = await Promise.all([current.handed, next.ready])
    await current.exited
    times.push(Date.now() - t0)
    windows.push([t0, Date.now()])
    if (handed.stats && handed.stats.drainMs !== undefined) drains.push(handed.stats.drainMs)
    if (handed.stats) migrate.add(handed.stats.migrateRequests)
    current = next
  }
  await new Promise((r) => setTimeout(r, 100))
  await c.stop()
  current.child.kill()
  const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0)
  return {
    handovers,
    outcomes: c.outcomes,
    requests: sum(c.outcomes.keepAlive) + sum(c.outcomes.fresh),
    handoverMs: { max: Math.max(...times), mean: times.reduce((a, b) => a + b, 0) / times.length },
    drainMs: drains.length ? { max: Math.max(...drains) } : null,
    migrateRequests: [...migrate],
    latencyP99Ms: p99(c.latencies),
    // Requests that started while a handover ran (new instance started → old one exited), and the others.
    latencyP99DuringHandoverMs: p99(c.latencies.filter((l) => windows.some(([a, b]) => l.at >= a && l.at <= b))),
    latencyP99SteadyMs: p99(c.latencies.filter((l) => !windows.some(([a, b]) => l.at >= a && l.at <= b))),
    errorWindowMs: c.errors.first ? c.errors.last - c.errors.first : 0,
    // Per handover: first to last failure within it; the largest.
    gapMsMax: Math.max(
      0,
      ...windows.map(([a, b]) => {
        const inside = c.errors.at.filter((t) => t >= a && t <= b)
        return inside.length ? inside[inside.length - 1] - inside[0] : 0
      }),
    ),
  }
}

async function rollout() {
  const v1 = start('v1', { mode: 'plain' })
  await v1.ready
  const c = clients()
  await new Promise((r) => setTimeout(r, 200))
  const t0 = Date.now()
  const v2 = start('v2')
  const ready = await v2.ready
  await v1.exited
  const ms = Date.now() - t0
  await new Promise((r) => setTimeout(r, 200))
  await c.stop()
  v2.child.kill()
  const downtimeMs = c.errors.first ? c.errors.last - c.errors.first : 0
  return { outcomes: c.outcomes, downtimeMs, handoverMs: ms, retriedMs: ready.retriedMs, latencyP99Ms: p99(c.latencies) }
}

const [scenario, n, mode] = process.argv.slice(2)
// 'migrate' (as the last argument): net.ipv4.tcp_migrate_req on in this
// namespace, so that the older instance's listener needs no drain.
if (process.argv.includes('migrate')) require('node:fs').writeFileSync('/proc/sys/net/ipv4/tcp_migrate_req', '1')
const run = { steer, stranger, rollout, service: otherService, load: () => load(Number(n || 20), mode && mode !== 'migrate' ? mode : 'shared') }[scenario]
run().then(
  (result) => {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  (error) => {
    console.error(error)
    process.exit(1)
  },
)
