'use strict'
// Concurrent handovers while 30 % of the packets are dropped (nftables in a
// private network namespace).

const { alternate } = require('../lib/alternate.js')
const { ensureNft } = require('../lib/nft.js')
const { rowBuilder } = require('../lib/rows.js')
const { percentile } = require('../lib/stats.js')
const { formatNumber } = require('../lib/table.js')
const { runWorker } = require('../lib/worker.js')

const LOSS_PERCENT = 30

/** A percentile in ms, where handovers that never happened count as slower than any other. */
function censoredPercentile(run, p, timeoutMs) {
  const samples = [...run.latenciesNs, ...Array(run.unfinished).fill(Infinity)]
  const value = percentile(samples, p)
  if (value !== Infinity) return value / 1e6
  return { text: `> ${formatNumber(timeoutMs)} ms (${run.unfinished} unfinished)`, atLeast: timeoutMs }
}

async function loss(ctx) {
  const reason = !ctx.spawn.isolated ? 'needs a private network namespace (root)' : ensureNft(ctx.progress)
  const title = `${LOSS_PERCENT} % packet loss`
  if (reason) {
    ctx.progress(`loss: skipped, ${reason}`)
    const skipped = { text: 'skipped' }
    const rows = [{ figure: 'every row', ours: skipped, original: skipped }]
    return { title, rows, notes: [`Skipped: ${reason}.`], raw: null }
  }
  const pairs = ctx.quick ? 8 : 40
  // The original announces every 10 s: wait for seven of its announcements.
  const timeoutMs = ctx.quick ? 3000 : 61_000
  ctx.progress(`loss: ${pairs} concurrent handovers per implementation (up to ${timeoutMs / 1000} s each)`)
  const config = { pairs, basePort: 25400, lossPercent: LOSS_PERCENT, timeoutMs }
  const runs = await alternate(ctx.impls, 1, (impl) => runWorker('loss', { ...config, impl }, ctx.spawn))
  const row = rowBuilder(ctx, (impl) => runs[impl][0])
  const handovers = (label, p, target) =>
    row(`${pairs} concurrent handovers, ${label}`, 'ms', (r) => censoredPercentile(r, p, timeoutMs), { target })
  const rows = [
    handovers('p50', 50),
    handovers('p90', 90, { below: 500 }),
    handovers('max', 100, { below: 2000 }),
    row('packets dropped by the rule (measured loss)', '%', (r) => (100 * r.dropped) / (r.dropped + r.passed), {
      compare: false,
    }),
  ]
  const notes = [
    `Rule on the output hook of the namespace: \`udp dport {ports} numgen random mod 100 < ${LOSS_PERCENT} drop\`. ` +
      "Each pair has its own port; each is timed from its `startBroadcasting()` to its callback.",
  ]
  return { title, rows, notes, raw: runs }
}

module.exports = { loss }
