'use strict'
// require() time and memory, each sample from a fresh process.

const { alternate } = require('../lib/alternate.js')
const { rowBuilder } = require('../lib/rows.js')
const { median } = require('../lib/stats.js')
const { runWorker } = require('../lib/worker.js')

const MiB = 2 ** 20
const PORT = 25000

async function footprint(ctx) {
  const runs = ctx.quick ? 3 : 11
  const impls = ['bare', ...ctx.impls]
  const run = (impl) => runWorker('footprint', { impl, port: PORT, settleMs: ctx.quick ? 50 : 200 }, ctx.spawn)
  ctx.progress(`footprint: a warm-up, then ${runs} fresh processes each of bare node, ${ctx.impls.join(', ')}`)
  await alternate(impls, 1, run) // fills the page cache; not counted
  const samples = await alternate(impls, runs, run)

  const bare = (pick) => median(samples.bare.map(pick))
  // What each row takes from one sample.
  const requireMs = (s) => s.requireNs / 1e6
  const requireRss = (s) => (s.afterRequire.rss - s.before.rss) / MiB
  const peakOverBare = (s) => (s.afterRequire.peakRss - bare((b) => b.afterRequire.peakRss)) / MiB
  const listeningRss = (s) => (s.listening.rss - s.before.rss) / MiB

  const row = rowBuilder(ctx, (impl) => samples[impl])
  const medianRow = (figure, unit, pick, extra) => row(figure, unit, (list) => median(list.map(pick)), extra)
  const rows = [
    medianRow(`\`require()\` wall time, in-process (median of ${runs})`, 'ms', requireMs, { target: { below: 3 } }),
    medianRow('RSS added by `require()` (in-process, after − before)', 'MiB', requireRss, { target: { below: 3 } }),
    medianRow('peak RSS after `require()`, added over bare node (whole process)', 'MiB', peakOverBare),
    medianRow('RSS added by `require()` + one listening peer (in-process)', 'MiB', listeningRss, { target: { below: 4 } }),
  ]
  const notes = [
    `Each sample is a fresh process; medians of ${runs}. In-process: read inside the process just before \`require()\`, ` +
      'just after it, and once a peer listens.',
    'Whole-process rows subtract the median of a bare `node` that runs the same worker without loading anything.',
  ]
  return { title: 'Footprint', rows, notes, raw: samples }
}

module.exports = { footprint }
