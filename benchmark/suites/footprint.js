'use strict'
// require() time and memory, each sample from a fresh process.

const { alternate } = require('../lib/alternate.js')
const { median } = require('../lib/stats.js')
const { runWorkerOrThrow } = require('../lib/worker.js')

const MiB = 2 ** 20
const PORT = 45000

async function footprint(ctx) {
  const runs = ctx.quick ? 3 : 11
  const impls = ['bare', ...ctx.impls]
  const run = (impl) => runWorkerOrThrow('footprint', { impl, port: PORT, settleMs: ctx.quick ? 50 : 200 }, ctx.spawn)
  ctx.progress(`footprint: warm-up, then ${runs} fresh processes each of bare node, ${ctx.impls.join(', ')}`)
  await alternate(impls, 1, run) // warms the page cache; not counted
  const samples = await alternate(impls, runs, run)

  const bare = samples.bare
  const figure = (impl, pick) => (samples[impl] ? median(samples[impl].map(pick)) : ctx.missing(impl))
  const both = (pick) => ({ ours: figure('ours', pick), original: figure('original', pick) })
  const bareMedian = (pick) => median(bare.map(pick))

  const rows = [
    {
      figure: `\`require()\` wall time, in-process (median of ${runs})`,
      unit: 'ms',
      ...both((s) => s.requireNs / 1e6),
      target: { below: 3 },
    },
    {
      figure: 'process start → `require()` done, added over bare node (median)',
      unit: 'ms',
      ...both((s) => s.afterRequire.sinceStartMs - bareMedian((b) => b.afterRequire.sinceStartMs)),
    },
    {
      figure: 'RSS added by `require()` (in-process, after − before)',
      unit: 'MiB',
      ...both((s) => (s.afterRequire.rss - s.before.rss) / MiB),
      target: { below: 3 },
    },
    {
      figure: 'peak RSS after `require()`, added over bare node (whole process)',
      unit: 'MiB',
      ...both((s) => (s.afterRequire.peakRss - bareMedian((b) => b.afterRequire.peakRss)) / MiB),
    },
    {
      figure: 'RSS added by `require()` + one listening peer (in-process)',
      unit: 'MiB',
      ...both((s) => (s.listening.rss - s.before.rss) / MiB),
      target: { below: 4 },
    },
  ]
  return { title: 'Footprint', rows, raw: samples }
}

module.exports = { footprint }
