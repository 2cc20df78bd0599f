'use strict'
// An idle listening peer: CPU, wake-ups and native threads. CPU is read
// from outside every second, so that a one-off burst (V8 tidying up after
// a large require(), say) can be told from a steady cost.

const { once } = require('node:events')
const { alternate } = require('../lib/alternate.js')
const { cpuNs, voluntarySwitches } = require('../lib/procfs.js')
const { rowBuilder } = require('../lib/rows.js')
const { median } = require('../lib/stats.js')
const { startWorker } = require('../lib/worker.js')

const WINDOW_MS = 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Watches an idle worker for durationMs: CPU ns of each window, total wake-ups and wall time. */
async function watch(pid, durationMs) {
  const switchesBefore = voluntarySwitches(pid)
  const start = process.hrtime.bigint()
  const windowsCpuNs = []
  for (let left = durationMs; left > 0; left -= WINDOW_MS) {
    const before = cpuNs(pid)
    await sleep(Math.min(WINDOW_MS, left))
    windowsCpuNs.push(cpuNs(pid) - before)
  }
  return {
    wallNs: Number(process.hrtime.bigint() - start),
    windowsCpuNs,
    wakeups: voluntarySwitches(pid) - switchesBefore,
  }
}

async function idleRun(ctx, impl, config, durationMs) {
  const worker = startWorker('idle', { ...config, impl }, ctx.spawn)
  const [message] = await once(worker.child, 'message')
  if (message.type !== 'idle') throw new Error(`idle worker: unexpected ${JSON.stringify(message)}`)
  const watched = await watch(worker.child.pid, durationMs)
  worker.child.send({ cmd: 'stop' })
  return { ...watched, ...(await worker.done) }
}

async function idle(ctx) {
  const durationMs = ctx.quick ? 1000 : 10_000
  ctx.progress(`idle: one listening peer for ${durationMs / 1000} s per implementation`)
  const config = { port: 25500, settleMs: ctx.quick ? 200 : 1000 }
  const runs = await alternate(ctx.impls, 1, (impl) => idleRun(ctx, impl, config, durationMs))
  const percentOf = (ns, wallNs) => (ns * 100) / wallNs
  const row = rowBuilder(ctx, (impl) => runs[impl][0])
  const rows = [
    row(`CPU over ${durationMs / 1000} s (% of one core)`, '%', (r) => percentOf(sum(r.windowsCpuNs), r.wallNs), {
      target: { below: 0.1 },
    }),
    row('CPU in the median 1 s window of those (% of one core)', '%', (r) =>
      percentOf(median(r.windowsCpuNs), WINDOW_MS * 1e6),
    ),
    row('wake-ups per second (voluntary context switches, all threads)', '/s', (r) => r.wakeups / (r.wallNs / 1e9)),
    row('native threads added by `require()` + one listening peer', '', (r) => r.threadsListening - r.threadsBefore, {
      target: { text: 'small, documented' },
    }),
  ]
  const notes = [
    `The window starts ${config.settleMs / 1000} s after the peer listens; the idle process is read from outside ` +
      '(/proc/PID/task/*/schedstat and status), so measuring wakes it up for nothing.',
    'Threads are counted in /proc/self/task before `require()` and once the peer listens.',
  ]
  return { title: 'Idle listening peer', rows, notes, raw: runs }
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0)
}

module.exports = { idle }
