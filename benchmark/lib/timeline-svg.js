'use strict'
// Draws request timelines across handovers as one SVG: a lane per run, time
// from the start of its load on x, request latency on a log scale on y (the
// fastest to the slowest answered request of each time slice), failed and
// non-2xx requests as red bars under it (the share of the slice that
// failed), and a dashed line where each new instance became ready. Pure: a
// string in, a string out (benchmark/suites/routing.js writes it to docs/;
// the slices come from test-support/routing/scenario.js).

const WIDTH = 960
const LEFT = 64
const RIGHT = 16
const LANE = 172
const PLOT = 100
const FAIL_STRIP = 18
const TOP = 58
const MIN_MS = 1
const MAX_MS = 10_000
const OK = '#2f9e44'
const FAILED = '#e03131'
const MARK = '#868e96'

const escape = (text) => String(text).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])
const round = (v) => Math.round(v * 10) / 10

/** y of a latency in ms inside a plot that starts at `top`: log scale from MIN_MS (bottom) to MAX_MS (top). */
function latencyY(ms, top) {
  const clamped = Math.min(MAX_MS, Math.max(MIN_MS, ms))
  const share = Math.log10(clamped / MIN_MS) / Math.log10(MAX_MS / MIN_MS)
  return round(top + PLOT - share * PLOT)
}

/** Ticks every 1, 2, 5, 10 … s, about eight over `seconds`. */
function timeTicks(seconds) {
  const steps = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600]
  const step = steps.find((s) => seconds / s <= 8) || 600
  const ticks = []
  for (let t = 0; t <= seconds; t += step) ticks.push(t)
  return ticks
}

function lane({ label, durationS, bins, marks }, index) {
  const top = TOP + index * LANE
  const span = Math.max(durationS, 1)
  const x = (t) => round(LEFT + (t / span) * (WIDTH - LEFT - RIGHT))
  const failTop = top + PLOT + 4
  const parts = [`<text x="${LEFT}" y="${top - 8}" class="lane">${escape(label)}</text>`]
  // Grid: one line a decade.
  for (let ms = MIN_MS; ms <= MAX_MS; ms *= 10) {
    const y = latencyY(ms, top)
    const text = ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`
    parts.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${y}" y2="${y}" class="grid"/><text x="${LEFT - 6}" y="${y + 4}" class="axis" text-anchor="end">${text}</text>`)
  }
  for (const t of marks) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${failTop + FAIL_STRIP}" class="mark"/>`)
  let failed = 0
  let requests = 0
  for (const bin of bins) {
    requests += bin.n
    failed += bin.bad
    const bx = x(bin.t)
    if (bin.n > bin.bad) parts.push(`<line x1="${bx}" x2="${bx}" y1="${latencyY(bin.max, top)}" y2="${latencyY(bin.min, top) + 0.5}" class="ok"/>`)
    if (bin.bad > 0) {
      const height = Math.max(3, round((bin.bad / bin.n) * FAIL_STRIP))
      parts.push(`<rect x="${round(bx - 1)}" y="${round(failTop + FAIL_STRIP - height)}" width="2" height="${height}" class="failed"/>`)
    }
  }
  parts.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${failTop + FAIL_STRIP}" y2="${failTop + FAIL_STRIP}" class="grid"/>`)
  parts.push(`<text x="${LEFT - 6}" y="${failTop + FAIL_STRIP - 4}" class="axis fail" text-anchor="end">failed</text>`)
  for (const t of timeTicks(span)) {
    parts.push(`<text x="${x(t)}" y="${failTop + FAIL_STRIP + 14}" class="axis" text-anchor="middle">${t} s</text>`)
  }
  parts.push(
    `<text x="${WIDTH - RIGHT}" y="${top - 8}" class="axis" text-anchor="end">${requests.toLocaleString('en-US')} requests, ${failed.toLocaleString('en-US')} failed or non-2xx</text>`,
  )
  return parts.join('\n')
}

/**
 * lanes: [{ label, durationS, bins: [{ t, n, bad, min, max }], marks: [t] }], times in s from the
 * lane's start, latencies in ms (min/max over the slice's answered requests).
 */
function timelineSvg({ title, lanes }) {
  const height = TOP + lanes.length * LANE - 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    '<style>.grid{stroke:#dee2e6;stroke-width:1}.mark{stroke:' + MARK + ';stroke-dasharray:3 3}.ok{stroke:' + OK + ';stroke-width:1.5}',
    '.failed{fill:' + FAILED + '}.axis{fill:#495057;font-size:11px}.fail{fill:' + FAILED + '}.lane{font-weight:bold}.title{font-size:14px;font-weight:bold}</style>',
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="${LEFT}" y="18" class="title">${escape(title)}</text>`,
    `<text x="${LEFT}" y="36" class="axis">green: fastest to slowest answer in each time slice · red: the share of the slice that failed or got a non-2xx · dashed: a new instance ready</text>`,
    ...lanes.map(lane),
    '</svg>',
    '',
  ].join('\n')
}

module.exports = { timelineSvg, latencyY }
