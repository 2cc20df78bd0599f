'use strict'
// A listening peer under a flood of older announcements, then of malformed
// packets, from another process.

const { alternate } = require('../lib/alternate.js')
const { prepareFlooder } = require('../lib/flooder.js')
const { rowBuilder } = require('../lib/rows.js')
const { formatNumber } = require('../lib/table.js')
const { runWorker } = require('../lib/worker.js')

const RATE = 200_000
const PORT = 25300
const KINDS = [
  { kind: 'older', title: 'Flood of older announcements' },
  { kind: 'malformed', title: 'Flood of malformed packets' },
]

/** The figures of one flood run, in the units of the rows; 'crashed' cells when the listener died. */
function figures(run) {
  const rate = run.flood.sent / (run.flood.elapsedNs / 1e9)
  if (run.crashed) {
    const crashed = { text: 'crashed' }
    const keys = ['delivered', 'perWakeup', 'cpuPerPacket', 'cpuPerDelivered', 'cpuPercent', 'p99', 'max', 'raw']
    return { rate, ...Object.fromEntries(keys.map((key) => [key, crashed])), handover: { text: 'crashed', ok: false } }
  }
  const { cpuUs, wallNs, delayNs } = run.listener
  const beyond = (ns) => Math.max(0, ns - delayNs.resolution) / 1e6
  return {
    rate,
    cpuPerPacket: cpuUs / run.flood.sent,
    cpuPerDelivered: run.udp ? cpuUs / run.udp.delivered : null,
    perWakeup: run.udp ? run.udp.delivered / run.listener.wakeups : null,
    cpuPercent: (cpuUs * 1e3 * 100) / wallNs,
    p99: beyond(delayNs.p99),
    max: beyond(delayNs.max),
    raw: { text: `${formatNumber(delayNs.p99 / 1e6)} / ${formatNumber(delayNs.max / 1e6)} ms` },
    delivered: run.udp
      ? { text: `${formatNumber(run.udp.delivered)} / ${formatNumber(run.udp.droppedReceiveBufferFull)}` }
      : null,
    handover:
      run.handoverMs === null
        ? { text: 'no', ok: false }
        : { text: `yes, in ${formatNumber(run.handoverMs)} ms`, ok: true },
  }
}

function rows(ctx, runs, durationMs) {
  const row = rowBuilder(ctx, (impl) => figures(runs[impl][0]))
  return [
    row(`flood rate achieved over ${durationMs / 1000} s (packets sent / s)`, 'pkt/s', (f) => f.rate, {
      compare: false,
    }),
    row('packets delivered to the listener / dropped by the kernel (receive buffer full)', '', (f) => f.delivered),
    row('packets delivered per wake-up of the listening process (voluntary context switches)', '', (f) => f.perWakeup, {
      compare: false,
    }),
    row('listener CPU time per packet sent', 'µs', (f) => f.cpuPerPacket, { target: { below: 1.5 } }),
    row('listener CPU time per packet delivered', 'µs', (f) => f.cpuPerDelivered),
    row('listener CPU (% of one core)', '%', (f) => f.cpuPercent),
    row('event-loop delay p99, beyond the 1 ms timer interval', 'ms', (f) => f.p99, { target: { below: 1 } }),
    row('event-loop delay max, beyond the 1 ms timer interval', 'ms', (f) => f.max, { target: { below: 5 } }),
    row('event-loop delay histogram as recorded, p99 / max (includes the 1 ms interval)', '', (f) => f.raw),
    row('hands over right after the flood', '', (f) => f.handover, { target: { ok: true, text: 'yes' } }),
  ]
}

function notes(flooder) {
  return [
    `Flooder: ${flooder.kind}, asked for ${RATE / 1000}k packets/s, in its own process. ` +
      'CPU time covers every thread of the listening process.',
    "Event-loop delay: `monitorEventLoopDelay({ resolution: 1 })` on the listener's main thread. The histogram " +
      'records whole 1 ms timer intervals, so the target rows subtract that 1 ms.',
    'After the flood, a younger 9-byte announcement is sent every 100 ms (for up to 2 s) until the callback runs.',
    ...(flooder.note ? [flooder.note] : []),
  ]
}

async function flood(ctx) {
  const durationMs = ctx.quick ? 500 : 3000
  const flooder = prepareFlooder()
  const sections = []
  try {
    for (const [index, { kind, title }] of KINDS.entries()) {
      ctx.progress(`flood: ${durationMs / 1000} s of ${kind} packets per implementation (${flooder.kind} flooder)`)
      const impls = index % 2 ? [...ctx.impls].reverse() : ctx.impls // who goes first alternates too
      const config = { kind, rate: RATE, durationMs, port: PORT, flooder, isolated: ctx.spawn.isolated }
      const runs = await alternate(impls, 1, (impl) => runWorker('flood', { ...config, impl }, ctx.spawn))
      sections.push({ title, rows: rows(ctx, runs, durationMs), notes: notes(flooder), raw: runs })
    }
  } finally {
    flooder.dispose()
  }
  return sections
}

module.exports = { flood }
