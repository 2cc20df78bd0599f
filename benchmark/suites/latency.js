'use strict'
// startBroadcasting() → the old peer's shutdown callback, in one process
// and across two.

const { alternate } = require('../lib/alternate.js')
const { rowBuilder } = require('../lib/rows.js')
const { percentile } = require('../lib/stats.js')
const { runWorker } = require('../lib/worker.js')

const TARGETS = { 50: { below: 100 }, 99: { below: 300 } }

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
  return {
    title: "`startBroadcasting()` → old peer's callback",
    rows,
    notes,
    raw: { oneProcess: local.runs, twoProcesses: cross.runs },
  }
}

module.exports = { latency }
