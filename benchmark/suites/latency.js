'use strict'
// startBroadcasting() → the old peer's shutdown callback, in one process
// and across two; then ours against the floor addon (benchmark/floor/),
// taking turns handover by handover in the same processes.

const { alternate } = require('../lib/alternate.js')
const { prepareFloor } = require('../lib/floor.js')
const { rowBuilder } = require('../lib/rows.js')
const { percentile } = require('../lib/stats.js')
const { runWorker } = require('../lib/worker.js')

const TARGETS = { 50: { below: 100 }, 99: { below: 300 } }
/** SPEC §7: ours at most as slow as the floor, at p50 and p99. Reported, never asserted. */
const FLOOR_TARGETS = { 50: { ratioAtMost: 1 }, 99: { ratioAtMost: 1 } }
const FLOOR_TITLE = "`startBroadcasting()` → old peer's callback: ours against the floor"

/** Runs `rounds` workers per implementation, alternating; the samples of each implementation pooled. */
async function pooled(ctx, worker, config, rounds) {
  const runs = await alternate(ctx.impls, rounds, (impl) => runWorker(worker, { ...config, impl }, ctx.spawn))
  const pool = (impl, key) => runs[impl].flatMap((r) => r[key] || [])
  const samples = (impl) => ({
    latenciesNs: pool(impl, 'latenciesNs'),
    broadcastCallsNs: pool(impl, 'broadcastCallsNs'),
    constructorCallsNs: pool(impl, 'constructorCallsNs'),
  })
  return { runs, row: rowBuilder(ctx, samples) }
}

/** Rows of p50, p90 and p99 in µs. */
function percentileRows(row, label, key) {
  return [50, 90, 99].map((p) =>
    row(`${label}, p${p}`, 'µs', (samples) => percentile(samples[key], p) / 1e3, { target: TARGETS[p] }),
  )
}

/**
 * `rounds` workers, each running `perRound` handovers of ours and of the
 * floor, turn by turn (workers/handovers.js); who goes first flips from
 * worker to worker too. Returns the runs and the samples pooled per implementation.
 */
async function paired(ctx, worker, config, rounds, perRound) {
  const runs = []
  for (let round = 0; round < rounds; round++) {
    const impls = round % 2 === 0 ? ['floor', 'ours'] : ['ours', 'floor']
    runs.push((await runWorker(worker, { ...config, impls, count: perRound }, ctx.spawn)).byImpl)
  }
  const pool = (impl, key) => runs.flatMap((r) => r[impl][key])
  const samples = (impl) => ({
    latenciesNs: pool(impl, 'latenciesNs'),
    broadcastCallsNs: pool(impl, 'broadcastCallsNs'),
  })
  return { runs, samples }
}

/** The section "ours against the floor": rows of { figure, unit, ours, floor, target? }. */
async function againstFloor(ctx) {
  const rounds = ctx.quick ? 1 : 4
  const perRound = ctx.quick ? 20 : 150
  const n = rounds * perRound
  const floor = prepareFloor(ctx.progress)
  const variants = [
    { name: 'one process, after 5 ms idle', worker: 'handovers', config: { basePort: 25600, ports: 20 } },
    { name: 'one process, back to back', worker: 'handovers', config: { basePort: 25650, ports: 20, settleMs: 0 } },
    { name: 'two warm processes, after 5 ms idle', worker: 'warm-pairs', config: { basePort: 25700, ports: 20 } },
  ]
  const rows = []
  const raw = {}
  for (const { name, worker, config } of variants) {
    let samples = null
    if (!floor.skipped) {
      ctx.progress(`latency: ${n} handovers of ours and ${n} of the floor, turn by turn, ${name}`)
      const measured = await paired(ctx, worker, config, rounds, perRound)
      samples = measured.samples
      raw[name] = measured.runs
    }
    const row = (figure, unit, compute, extra = {}) => {
      const value = (impl) => (samples ? compute(samples(impl)) : { text: 'skipped' })
      return { figure, unit, ours: value('ours'), floor: value('floor'), ...extra }
    }
    for (const p of [50, 90, 99]) {
      const latency = (s) => percentile(s.latenciesNs, p) / 1e3
      rows.push(row(`${name} (${n} + ${n} handovers), p${p}`, 'µs', latency, { target: FLOOR_TARGETS[p] }))
    }
    const call = (s) => percentile(s.broadcastCallsNs, 50) / 1e3
    rows.push(row(`${name}: the \`startBroadcasting()\` call itself, p50`, 'µs', call))
  }
  const notes = [
    'The floor (`benchmark/floor/`, built by the bench with cargo) does only what every handover needs: one `sendto` ' +
      'of the 9-byte announcement on a socket made beforehand; on the old side one `recv` per packet on a ' +
      'one-worker tokio runtime, decode, compare and the callback through a threadsafe function, once. Its ' +
      '`startBroadcasting()` sends no heartbeat after that packet.',
    'One process: the harness of the first table (fresh peers per handover, timed from just before ' +
      "`startBroadcasting()` to the first line of the old peer's callback), but ours and the floor take turns " +
      'handover by handover in the same processes, so drift hits both alike; both addons are loaded. There the ' +
      "floor's receive runs on its runtime thread while the sender's JS thread is still returning from " +
      "`startBroadcasting()`; ours reads on the JS thread, after that return.",
    'Two warm processes: as on a device. Per implementation an old-side and a young-side process live for the ' +
      'whole run (`workers/warm-pairs.js`); each handover uses fresh peers in them, the old process idles 5 ms, ' +
      'and both stamp with CLOCK_MONOTONIC. Ours and the floor take turns.',
  ]
  if (floor.skipped) notes.unshift(`Skipped: ${floor.skipped}.`)
  return { title: FLOOR_TITLE, against: 'floor', rows, notes, raw }
}

async function latency(ctx) {
  const rounds = ctx.quick ? 1 : 4
  const perRound = ctx.quick ? 20 : 50
  const crossPerRound = ctx.quick ? 3 : 50

  ctx.progress(`latency: ${rounds * perRound} handovers in one process, per implementation`)
  const local = await pooled(ctx, 'handovers', { count: perRound, basePort: 25100, ports: 20 }, rounds)
  ctx.progress(`latency: ${rounds * perRound} back-to-back handovers in one process, per implementation`)
  const warm = await pooled(ctx, 'handovers', { count: perRound, basePort: 25150, ports: 20, settleMs: 0 }, rounds)
  ctx.progress(`latency: ${rounds * crossPerRound} handovers across two fresh processes, per implementation`)
  const cross = await pooled(ctx, 'cross', { count: crossPerRound, basePort: 25200, ports: 20 }, rounds)

  const rows = [
    ...percentileRows(local.row, `one process (${rounds * perRound} handovers)`, 'latenciesNs'),
    local.row('one process: the `startBroadcasting()` call itself, p50', 'µs', (s) =>
      percentile(s.broadcastCallsNs, 50) / 1e3,
    ),
    local.row('one process: the `new HandoverPeer()` call, p50 (not timed above)', 'µs', (s) =>
      percentile(s.constructorCallsNs, 50) / 1e3,
    ),
    ...percentileRows(warm.row, `one process, back to back (${rounds * perRound} handovers)`, 'latenciesNs'),
    ...percentileRows(cross.row, `two fresh processes (${rounds * crossPerRound} handovers)`, 'latenciesNs'),
  ]
  const notes = [
    "Timed from just before `startBroadcasting()` on the young peer to the first line of the old peer's shutdown " +
      'callback. The old peer has listened for a few ms and its event loop is idle.',
    'One process: fresh peers for every handover, in a warm process. The callback cannot run before ' +
      '`startBroadcasting()` returns, so the time that call takes is shown too.',
    'Back to back: the same, without the 5 ms pause before each announcement, so no thread has gone idle ' +
      '(on this VM a thread woken from idle can take 100 µs or more to run, which dominates the other rows).',
    'Two processes: a fresh old and a fresh young process for every handover, as after a real update: the young ' +
      'one calls `startBroadcasting()` for the first time in its life.',
  ]
  const section = {
    title: "`startBroadcasting()` → old peer's callback",
    rows,
    notes,
    raw: { oneProcess: local.runs, twoProcesses: cross.runs },
  }
  return [section, await againstFloor(ctx).catch((error) => ({ title: FLOOR_TITLE, error: error.message }))]
}

module.exports = { latency }
