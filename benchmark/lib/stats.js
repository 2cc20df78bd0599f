'use strict'
// Order statistics over samples.

function sorted(samples) {
  return Float64Array.from(samples).sort()
}

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
function percentile(samples, p) {
  if (samples.length === 0) return null
  const s = sorted(samples)
  const rank = Math.ceil((p / 100) * s.length)
  return s[Math.min(s.length, Math.max(1, rank)) - 1]
}

function median(samples) {
  if (samples.length === 0) return null
  const s = sorted(samples)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function max(samples) {
  return samples.length === 0 ? null : Math.max(...samples)
}

module.exports = { percentile, median, max }
