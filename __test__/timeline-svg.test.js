'use strict'
// The bench's request timelines (docs/routing-*.svg): time slices from a
// run's records (test-support/routing/scenario.js) and their drawing
// (benchmark/lib/timeline-svg.js). Pure: no sockets.

const { summarize } = require('../test-support/routing/scenario.js')
const { timelineSvg, latencyY } = require('../benchmark/lib/timeline-svg.js')

const START = 1_000_000
/** 10 s at 300 requests/s; the ones due from 4.0 s to 4.5 s fail with a 502. */
function records() {
  const out = []
  for (let i = 0; i < 3000; i++) {
    const sentAt = START + i * (1000 / 300)
    const failed = sentAt >= START + 4000 && sentAt < START + 4500
    out.push([sentAt, 2 + (i % 7), failed ? 'http:502' : 'ok', failed ? null : 'v1', 0, sentAt + 1])
  }
  return out
}

const timeline = [{ to: 'v2', spawnAt: START + 3500, readyAt: START + 3900, goneAt: START + 4600, settledSince: START + 5000 }]
const run = () => summarize({ proxy: 'haproxy', mode: 'routed', handovers: 1, rate: 300, startedAt: START, records: records(), timeline, routerEvents: [] })

test('a run is cut into at most 600 slices that keep every request and every failure', () => {
  const { lane } = run()
  expect(lane.bins.length).toBeLessThanOrEqual(600)
  expect(lane.bins.reduce((n, b) => n + b.n, 0)).toBe(3000)
  expect(lane.bins.reduce((n, b) => n + b.bad, 0)).toBe(150)
  // The failures sit where they happened, and the new instance's ready time is marked.
  const failing = lane.bins.filter((b) => b.bad > 0)
  expect(Math.min(...failing.map((b) => b.t))).toBeGreaterThanOrEqual(4)
  expect(Math.max(...failing.map((b) => b.t))).toBeLessThanOrEqual(4.5)
  expect(lane.marks).toEqual([3.9])
  expect(lane.durationS).toBeCloseTo(10, 0)
  // An answered slice spans its fastest to slowest answer.
  const answered = lane.bins.find((b) => b.bad === 0)
  expect(answered.min).toBeGreaterThanOrEqual(2)
  expect(answered.max).toBeLessThanOrEqual(8)
})

test('the drawing has a lane per run, a red bar per slice that failed and a line per ready instance', () => {
  const { lane } = run()
  const svg = timelineSvg({ title: 'behind <HAProxy> & co', lanes: [{ label: 'routed', ...lane }, { label: 'no router', ...lane, bins: lane.bins.map((b) => ({ ...b, bad: 0 })) }] })
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
  expect(svg).toContain('behind &lt;HAProxy&gt; &amp; co')
  const failedBars = svg.match(/class="failed"/g) || []
  expect(failedBars).toHaveLength(lane.bins.filter((b) => b.bad > 0).length)
  expect(svg.match(/class="mark"/g)).toHaveLength(2)
  expect(svg).toContain('3,000 requests, 150 failed or non-2xx')
  expect(svg).toContain('3,000 requests, 0 failed or non-2xx')
})

test('latency is drawn on a log scale from 1 ms (bottom) to 10 s (top), clamped', () => {
  expect(latencyY(1, 0)).toBe(100)
  expect(latencyY(10_000, 0)).toBe(0)
  expect(latencyY(100, 0)).toBe(50)
  expect(latencyY(0.01, 0)).toBe(100)
  expect(latencyY(60_000, 0)).toBe(0)
})
