'use strict'
// The listening peer under a flood (started by flood.js). Between 'start'
// and 'stop' it measures its own CPU time (process.cpuUsage(): every
// thread, native ones included), how often it slept and woke, and its
// event-loop delay; it reports when its shutdown callback runs.

const { monitorEventLoopDelay } = require('node:perf_hooks')
const { workerConfig, send } = require('./ipc.js')
const { adapter } = require('./impl.js')

const RESOLUTION_MS = 1

function measurement() {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  const cpu = process.cpuUsage()
  const switches = process.resourceUsage().voluntaryContextSwitches
  const start = process.hrtime.bigint()
  delay.enable()
  return () => {
    delay.disable()
    const used = process.cpuUsage(cpu)
    return {
      wallNs: Number(process.hrtime.bigint() - start),
      cpuUs: used.user + used.system,
      /** Times a thread of the process went to sleep waiting (and was woken again). */
      wakeups: process.resourceUsage().voluntaryContextSwitches - switches,
      // The histogram holds whole timer intervals, resolution included.
      delayNs: {
        p50: delay.percentile(50),
        p99: delay.percentile(99),
        max: delay.max,
        resolution: RESOLUTION_MS * 1e6,
      },
    }
  }
}

async function main() {
  const { impl, port, startedAt } = workerConfig()
  const peers = adapter(impl)
  const peer = peers.create(startedAt, port)
  await peers.listen(peer, async () => send({ type: 'handover', at: process.hrtime.bigint().toString() }))
  let stop = null
  process.on('message', async (message) => {
    if (message.cmd === 'start') {
      stop = measurement()
      await send({ type: 'started' })
    } else if (message.cmd === 'exit') {
      process.exit(0) // runs the exit hooks that remove our temporary folder
    } else if (message.cmd === 'stop') {
      const figures = stop()
      const stats = typeof peer.stats === 'function' ? peer.stats() : null
      await send({ type: 'stopped', ...figures, stats })
    }
  })
  await send({ type: 'ready' })
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})
