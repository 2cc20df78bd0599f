'use strict'
// One fresh process: what require() of an implementation costs, and what
// one listening peer adds on top. `impl: 'bare'` runs the same steps
// without loading anything: the baseline for whole-process figures.
//
// Nothing is loaded before the first reading but this file's own small
// helpers, which every variant loads alike.

const { runMain } = require('./ipc.js')
const { requireImpl, adapter } = require('./impl.js')
const { threadCount } = require('./util.js')

const rss = () => process.memoryUsage.rss()
/** Peak RSS so far, bytes (getrusage reports KiB). */
const peakRss = () => process.resourceUsage().maxRSS * 1024

async function main({ impl, port, settleMs }) {
  const before = { rss: rss(), threads: threadCount() }
  const t0 = process.hrtime.bigint()
  const lib = impl === 'bare' ? null : requireImpl(impl)
  const t1 = process.hrtime.bigint()
  const afterRequire = {
    rss: rss(),
    peakRss: peakRss(),
    threads: threadCount(),
  }
  if (lib) {
    const peers = adapter(impl, lib)
    await peers.listen(peers.create(Date.now(), port), async () => {})
  }
  // Let whatever a peer starts lazily (threads, timers) start.
  await new Promise((resolve) => setTimeout(resolve, settleMs))
  const listening = { rss: rss(), peakRss: peakRss(), threads: threadCount() }
  return { requireNs: Number(t1 - t0), before, afterRequire, listening }
}

runMain(main)
