'use strict'
// Consecutive handovers of a service behind a real proxy under steady load,
// for __test__/routing-load.test.js and benchmark/suites/routing.js.
//
// This process plays balena-supervisor's hand-over loop: start v(n+1), wait
// for v(n)'s handover-complete file (or the handover timeout), kill v(n)
// (SIGKILL). Instances (instance.js) run in their own namespaces on the
// bridge of topology.js, each version at an address of its own on one port;
// the proxy, the router (routed runs) and the load client (load.js) run in
// the proxy namespace. Nothing leaves the namespaces.
//
// Between handovers the run waits until the load client had `settle`
// requests in a row answered (the proxy converged), so that every handover
// starts from a steady state and latency between handovers is measured.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { LineProcess } = require('../line-process.js')
const { routingNetwork, SUBNET } = require('./topology.js')
const { prepare, LISTEN_PORT } = require('./proxies.js')

// The checkout, as instances in their own mount namespace must find it.
const REPO = fs.realpathSync(path.join(__dirname, '..', '..'))
const INSTANCE = path.join(__dirname, 'instance.js')
const LOAD = path.join(__dirname, 'load.js')
const ROUTER = path.join(__dirname, 'router.js')
const SERVICE_PORT = 8080
const SERVICE = 'api'
/** The supervisor's handover timeout (io.balena.update.handover-timeout). */
const HANDOVER_TIMEOUT_MS = 20_000
const SETTLE_TIMEOUT_MS = 30_000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const roundTenth = (v) => Math.round(v * 10) / 10

/** Resolves with predicate()'s first truthy value, polled every 2 ms; rejects after timeoutMs. */
async function until(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = predicate()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(2)
  }
}

/**
 * Runs `handovers` consecutive handovers (v1 → v(handovers + 1)).
 *   proxy: 'haproxy' | 'nginx' | 'caddy'
 *   mode:  'original' (handover-lib) | 'ours' (plain drop-in) | 'routed' (ours + router + drain)
 *   rate:  requests per second; sockets: the client's connection bound (an open load: requests
 *          are not held back by slow answers); settle: ok in a row that say the proxy converged,
 *          steadyMs: then this long in steady state before the next handover
 *   log:   progress lines (optional)
 * Resolves with the figures (summarize()), the per-handover timeline and the raw outcome counts.
 */
async function runScenario({ proxy, mode, handovers = 20, rate = 300, sockets = 512, settle = 100, steadyMs = 1000, log = () => {}, env = {} }) {
  const routed = mode === 'routed'
  const net = routingNetwork(`${proxy}-${mode}`, handovers + 1)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `handover-routing-${proxy}-${mode}-`))
  const processes = []
  const lined = (label, role, command, args, options = {}) => {
    const child = net.topology.spawn(role, command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
    const process_ = new LineProcess(label, child)
    processes.push(process_)
    return process_
  }
  try {
    const servers = net.slots.map((s) => ({ address: s.address, port: SERVICE_PORT }))
    const setup = prepare(proxy, { dir, address: net.proxy.address, servers, routed })
    const proxyProcess = lined(proxy, 'proxy', setup.command, setup.args, { env: { ...process.env, ...setup.env } })
    let router = null
    if (routed) {
      const routerOptions = { serviceName: SERVICE, servicePort: SERVICE_PORT, subnets: [SUBNET], interfaceAddress: net.proxy.address }
      const json = JSON.stringify({ adapterOptions: setup.adapterOptions, routerOptions })
      // The proxy must listen (its socket or admin API) before the router's first apply; apply retries anyway.
      await sleep(300)
      router = lined('router', 'proxy', process.execPath, [ROUTER, proxy, json], { env: { ...process.env, ...env } })
      await router.next('started', { timeoutMs: 10_000 })
    }

    const instances = []
    const startInstance = (n) => {
      const slot = net.slots[n - 1]
      const version = `v${n}`
      const complete = fs.mkdtempSync(path.join(dir, `${version}-`))
      const lib = mode === 'original' ? 'original' : 'ours'
      const argv = [INSTANCE, version, slot.address, String(SERVICE_PORT), '--lib', lib, ...(routed ? ['--routed'] : [])]
      // A private mount namespace whose /tmp/balena is this instance's own folder, as balenaOS
      // bind-mounts one per container: handover-lib always writes /tmp/balena/handover-complete.
      // /tmp is a tmpfs of its own there (nothing is made on the host's), so a checkout that
      // lives under /tmp (a CI clone) is carried into it at the same path.
      const script = [
        'complete="$0"; repo="$1"; shift',
        'mount -t tmpfs tmpfs /mnt && mkdir /mnt/complete /mnt/repo',
        'mount --bind "$complete" /mnt/complete && mount --bind "$repo" /mnt/repo',
        'mount -t tmpfs tmpfs /tmp && mkdir /tmp/balena && mount --move /mnt/complete /tmp/balena',
        'case "$repo" in /tmp/*) mkdir -p "$repo" && mount --move /mnt/repo "$repo" ;; *) umount /mnt/repo ;; esac',
        'exec "$@"',
      ].join(' && ')
      const child = lined(version, slot.role, 'unshare', ['--mount', 'sh', '-c', script, complete, REPO, process.execPath, ...argv], {
        env: {
          ...process.env,
          BALENA_SERVICE_NAME: SERVICE,
          BALENA_SERVICE_HANDOVER_COMPLETE_PATH: '/tmp/balena/handover-complete',
          LOG_LEVEL: 'warning',
          ...env,
        },
      })
      const instance = { n, version, child, completeFile: path.join(complete, 'handover-complete'), spawnAt: Date.now() }
      instances.push(instance)
      return instance
    }

    let current = startInstance(1)
    current.readyAt = (await current.child.next('ready', { timeoutMs: 10_000 })).at

    const url = `http://${net.proxy.address}:${LISTEN_PORT}/`
    const client = lined('load', 'proxy', process.execPath, [LOAD, url, String(rate), String(sockets)])
    const started = await client.next('started', { timeoutMs: 40_000 })
    log(`${proxy}/${mode}: v1 routed, steady load at ${rate} req/s`)
    await sleep(1000)

    const timeline = []
    for (let n = 2; n <= handovers + 1; n++) {
      const old = current
      const next = startInstance(n)
      next.readyAt = (await next.child.next('ready', { timeoutMs: 10_000 })).at
      let timedOut = false
      await until(() => fs.existsSync(old.completeFile), HANDOVER_TIMEOUT_MS, `${old.version}'s handover-complete file`).catch(() => {
        timedOut = true
      })
      const completeAt = Date.now()
      const exited = new Promise((resolve) => (old.child.closed ? resolve() : old.child.child.once('close', resolve)))
      old.child.child.kill('SIGKILL')
      await exited
      const goneAt = Date.now()
      // The proxy converged: `settle` requests in a row answered, sent after v(n) was gone.
      const asked = client.reports.length
      client.child.stdin.write(`settle ${settle}\n`)
      const settled = await client.next('settled', { from: asked, timeoutMs: SETTLE_TIMEOUT_MS }).catch(() => null)
      const first = client.reports.find((r) => r.event === 'first' && r.backend === next.version)
      const handing = old.child.reports.find((r) => r.event === 'handing')
      const drained = old.child.reports.find((r) => r.event === 'drained')
      const closed = old.child.reports.find((r) => r.event === 'closed')
      timeline.push({
        from: old.version,
        to: next.version,
        spawnAt: next.spawnAt,
        readyAt: next.readyAt,
        handingAt: handing ? handing.at : null,
        drainReport: drained ? drained.report : null,
        drainedAt: drained ? drained.at : null,
        closedAt: closed ? closed.at : null,
        oldLastServedAt: closed ? closed.lastServedAt : null,
        completeAt,
        timedOut,
        goneAt,
        firstRoutedAt: first ? first.wroteAt : null,
        settledSince: settled ? settled.since : null,
      })
      await sleep(steadyMs)
      log(`${proxy}/${mode}: ${old.version} → ${next.version}${timedOut ? ' (handover timeout)' : ''}: ready→gone ${goneAt - next.readyAt} ms, settled after ${Date.now() - goneAt} ms`)
      current = next
    }
    await sleep(500)
    client.child.stdin.write('stop\n')
    const result = await client.next('result', { timeoutMs: 20_000 })
    if (!proxyProcess.running) throw new Error(`${proxy} exited during the run: ${proxyProcess.stderrTail}`)
    const routerEvents = router ? router.reports.filter((r) => r.event !== 'started') : []
    return summarize({ proxy, mode, handovers, rate, startedAt: started.at, records: result.records, timeline, routerEvents })
  } finally {
    for (const p of processes) p.child.stdin.end()
    // The proxy first, gently: nginx's master ends its workers on SIGTERM, while a SIGKILLed
    // master leaves them running, holding our pipes open.
    await Promise.all(processes.filter((p) => p.running).map((p) => stop(p.child, 3000)))
    await net.topology.destroy()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
function stop(child, graceMs) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

function spread(values) {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b)
  const round = (v) => (v === null ? null : roundTenth(v))
  return { n: sorted.length, p50: round(percentile(sorted, 0.5)), p99: round(percentile(sorted, 0.99)), max: round(sorted[sorted.length - 1] ?? null) }
}

/**
 * Time slices of a run's request records ([sentAt ms, latency ms, outcome, …]):
 * { durationS, bins }, at most `slices` of them, each at least 100 ms.
 */
function binRecords(records, startedAt, slices = 600) {
  if (records.length === 0) return { durationS: 0, bins: [] }
  const end = records.reduce((latest, r) => Math.max(latest, r[0] + r[1]), startedAt)
  const width = Math.max(100, Math.ceil((end - startedAt) / slices))
  const byIndex = new Map()
  for (const [sentAt, ms, outcome] of records) {
    const index = Math.floor((sentAt - startedAt) / width)
    let bin = byIndex.get(index)
    if (!bin) byIndex.set(index, (bin = { t: roundTenth(((index + 0.5) * width) / 1000), n: 0, bad: 0, min: Infinity, max: 0 }))
    bin.n += 1
    if (outcome !== 'ok') bin.bad += 1
    else {
      bin.min = Math.min(bin.min, ms)
      bin.max = Math.max(bin.max, ms)
    }
  }
  const bins = [...byIndex.values()].sort((a, b) => a.t - b.t).map((b) => (b.min === Infinity ? { ...b, min: 0 } : { ...b, min: roundTenth(b.min), max: roundTenth(b.max) }))
  return { durationS: roundTenth((end - startedAt) / 1000), bins }
}

/** Figures from the client's records and the timeline. */
function summarize({ proxy, mode, handovers, rate, startedAt, records, timeline, routerEvents }) {
  const outcomes = {}
  let ok = 0
  let failed = 0
  let non2xx = 0
  let retried = 0
  let resetNewConnection = 0
  for (const [, , outcome, , again] of records) {
    outcomes[outcome] = (outcomes[outcome] || 0) + 1
    if (outcome === 'ok') ok += 1
    else if (outcome.startsWith('http:')) non2xx += 1
    else failed += 1
    if (again & 1) retried += 1
    if (again & 2) resetNewConnection += 1
  }
  // A handover runs from v(n+1)'s start until the proxy converged (the first of `settle` ok requests in a row).
  const windows = timeline.map((t) => [t.spawnAt, t.settledSince ?? t.goneAt + 1000])
  const during = (sentAt) => windows.some(([a, b]) => sentAt >= a && sentAt <= b)
  const latency = { steady: [], during: [] }
  for (const [sentAt, ms, outcome] of records) if (outcome === 'ok') latency[during(sentAt) ? 'during' : 'steady'].push(ms)
  const failureTimes = records.filter((r) => r[2] !== 'ok').map((r) => r[0])
  // Per handover: first to last failed or non-2xx request inside its window.
  const failureSpans = windows.map(([a, b]) => {
    const inside = failureTimes.filter((t) => t >= a && t <= b)
    return inside.length ? Math.max(...inside) - Math.min(...inside) : 0
  })
  // The first failures, placed relative to their handover, to tell what failed and when.
  const failureSamples = records
    .filter((r) => r[2] !== 'ok')
    .slice(0, 30)
    .map(([sentAt, ms, outcome, , retried, wroteAt, firstAttempt]) => {
      const t = timeline.find((h) => sentAt >= h.spawnAt - 1000 && sentAt <= (h.settledSince ?? h.goneAt + 30_000)) || {}
      return { outcome, firstAttempt, retried, handover: t.to, dueAfterReadyMs: t.readyAt ? Math.round(sentAt - t.readyAt) : null, wroteAfterReadyMs: wroteAt && t.readyAt ? Math.round(wroteAt - t.readyAt) : null, ms: Math.round(ms) }
    })
  const notNull = (f) => timeline.map(f).filter((v) => v !== null && !Number.isNaN(v))
  return {
    proxy,
    mode,
    handovers,
    rate,
    requests: records.length,
    ok,
    failed,
    non2xx,
    retried,
    resetNewConnection,
    outcomes,
    latencySteadyMs: spread(latency.steady),
    latencyDuringMs: spread(latency.during),
    upToFirstRoutedMs: spread(notNull((t) => (t.firstRoutedAt === null ? null : t.firstRoutedAt - t.readyAt))),
    // Routed: the drain report's waitedMs (DOWN → every router acknowledged that the proxy confirmed the drain).
    downToDrainConfirmedMs: spread(notNull((t) => (t.drainReport ? t.drainReport.waitedMs : null))),
    drainTimedOut: timeline.filter((t) => t.drainReport && t.drainReport.timedOut.length > 0).length,
    // The shutdown callback's start → the last request the old instance answered.
    handingToLastServedMs: spread(notNull((t) => (t.handingAt && t.oldLastServedAt ? t.oldLastServedAt - t.handingAt : null))),
    readyToGoneMs: spread(timeline.map((t) => t.goneAt - t.readyAt)),
    failureSpanMs: spread(failureSpans),
    handoverTimeouts: timeline.filter((t) => t.timedOut).length,
    failureSamples,
    // For a drawing (benchmark/lib/timeline-svg.js): time slices, and when each new instance was ready.
    lane: { ...binRecords(records, startedAt), marks: timeline.map((t) => roundTenth((t.readyAt - startedAt) / 1000)) },
    timeline,
    routerEvents,
  }
}


module.exports = { runScenario, summarize }
