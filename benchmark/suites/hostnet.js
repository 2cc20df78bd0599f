'use strict'
// Host-network handovers on one TCP port: consecutive handovers of an HTTP
// service (test-support/shared-scenario.js, in a private network namespace)
// under a keep-alive and a non-keep-alive client, with listenShared against
// the plain listen a service without it has (the new instance announces at
// once and retries its listen until the old one closed: the best case
// without SO_REUSEPORT).

const { spawn } = require('node:child_process')
const path = require('node:path')
const { SETUP } = require('../../test-support/isolated.js')

const SCENARIO = path.join(__dirname, '..', '..', 'test-support', 'shared-scenario.js')

function runScenario(args, node = process.execPath) {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-n', 'sh', '-c', SETUP, node, SCENARIO, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '))
      if (code !== 0 || !line) return reject(new Error(`shared-scenario ${args.join(' ')} exited ${code}: ${err.slice(-500)}`))
      resolve(JSON.parse(line.slice('RESULT '.length)))
    })
  })
}

/** Failed requests of both clients whose error is `code` (all errors when code is null). */
function failures(result, code) {
  let n = 0
  for (const client of Object.values(result.outcomes)) {
    for (const [key, count] of Object.entries(client)) {
      if (key === 'ok') continue
      if (code === null || key === `error:${code}`) n += count
    }
  }
  return n
}

async function hostnet(ctx) {
  const title = 'Host network: consecutive handovers on one TCP port (listenShared vs a plain listen)'
  if (!ctx.spawn.isolated) {
    const skipped = { text: 'skipped' }
    ctx.progress('hostnet: skipped, needs a private network namespace (root)')
    return { title, against: 'plain', rows: [{ figure: 'every row', ours: skipped, plain: skipped }], notes: ['Skipped: needs a private network namespace (root).'], raw: null }
  }
  const handovers = ctx.quick ? 3 : 20
  ctx.progress(`hostnet: ${handovers} handovers with listenShared, then with a plain listen`)
  const ours = await runScenario(['load', String(handovers), 'shared'])
  const plain = await runScenario(['load', String(handovers), 'plain'])
  const runs = { ours, plain }
  const row = (figure, unit, get, extra = {}) => ({ figure, unit, ours: get(ours), plain: get(plain), ...extra })
  const rows = [
    row('requests sent (both clients)', '', (r) => r.requests, { compare: false }),
    row('connections refused', '', (r) => failures(r, 'ECONNREFUSED'), { target: { below: 1 } }),
    row('connections reset', '', (r) => failures(r, 'ECONNRESET'), { target: { below: 1 } }),
    row('failed requests, all causes', '', (r) => failures(r, null), { target: { below: 1 } }),
    row('longest run of failures in one handover (first to last failure)', 'ms', (r) => r.gapMsMax),
    row('handover: new instance started → old one exited, mean', 'ms', (r) => r.handoverMs.mean),
    row('handover, max', 'ms', (r) => r.handoverMs.max),
    row('request latency p99 while a handover runs', 'ms', (r) => r.latencyP99DuringHandoverMs),
    row('request latency p99 between handovers', 'ms', (r) => r.latencyP99SteadyMs),
  ]
  const notes = [
    `${handovers} consecutive handovers (v1→v${handovers + 1}) of an HTTP service on 127.0.0.1 in a private network namespace; ` +
      'one client reuses one keep-alive connection, the other opens a connection per request, both back to back.',
    'plain: each new instance announces at once and retries `listen()` every 25 ms until the old one closed. ' +
      'A service that lets EADDRINUSE crash it never announces, so its old instance only goes at the supervisor\'s timeout.',
    'Both services answer `Connection: close` once handing over and wait for their connections before `server.close()`.',
  ]
  const sections = [{ title, against: 'plain', rows, notes, raw: runs }]
  const newer = nodeWithReusePort()
  if (newer) sections.push(await againstReusePort(ctx, handovers, newer))
  else ctx.progress('hostnet: no Node 22.12+ in .cache/node (npm run node-matrix), so no reusePort comparison')
  return sections
}

/** The newest Node in .cache/node that has listen({ reusePort }) (22.12+), or null. */
function nodeWithReusePort() {
  const { cachedVersions, compareVersions } = require('../../scripts/node-matrix.js')
  const version = cachedVersions()
    .filter((v) => compareVersions(v, '22.12.0') >= 0)
    .sort(compareVersions)
    .pop()
  return version ? { version, binary: path.join(__dirname, '..', '..', '.cache', 'node', version, 'bin', 'node') } : null
}

/** The same handovers on a Node that has reusePort: listenShared against Node's own port sharing. */
async function againstReusePort(ctx, handovers, newer) {
  const title = `Host network on Node ${newer.version}: listenShared vs Node's own reusePort`
  ctx.progress(`hostnet: ${handovers} handovers on Node ${newer.version}, listenShared then reusePort`)
  const ours = await runScenario(['load', String(handovers), 'shared'], newer.binary)
  const reuse = await runScenario(['load', String(handovers), 'reuseport'], newer.binary)
  const row = (figure, unit, get, extra = {}) => ({ figure, unit, ours: get(ours), reusePort: get(reuse), ...extra })
  const rows = [
    row('requests sent (both clients)', '', (r) => r.requests, { compare: false }),
    row('connections refused', '', (r) => failures(r, 'ECONNREFUSED'), { target: { below: 1 } }),
    row('connections reset', '', (r) => failures(r, 'ECONNRESET'), { target: { below: 1 } }),
    row('failed requests, all causes', '', (r) => failures(r, null), { target: { below: 1 } }),
    row('handover: new instance started → old one exited, mean', 'ms', (r) => r.handoverMs.mean),
    row('request latency p99 while a handover runs', 'ms', (r) => r.latencyP99DuringHandoverMs),
  ]
  const notes = [
    "reusePort: `server.listen({ port, host, reusePort: true })`; the kernel's hash spreads new connections over both " +
      'instances until the old one closes, and what is queued on its listener then is reset.',
  ]
  return { title, against: 'reusePort', rows, notes, raw: { ours, reusePort: reuse } }
}

module.exports = { hostnet }
