'use strict'
// Markdown tables of rows: ours, the original, their ratio, the SPEC §7
// target and whether ours meets it.
//
// A row is { figure, unit, ours, original, target?, compare? } (compare:
// false when ours / original means nothing, as for a flood rate). A value is a number
// (in `unit`) or an object { text, ok?, atLeast? }: `atLeast` marks a
// censored figure ("> 61 s" when a run timed out), `ok` a yes/no outcome.
// A target is { below: number }, { ok: true, text } (a yes/no outcome),
// { ratioAtMost: number } (on ours / the other column), or { text } alone
// (judged in docs/BENCHMARKS.md, not here).
//
// A table compares ours with the original unless told another column
// (`against: 'floor'`, the floor addon of the latency section).

function header(against) {
  return ['figure', 'ours', against, `ours / ${against}`, 'target', 'met']
}

function formatNumber(v) {
  const a = Math.abs(v)
  if (a >= 1000 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toFixed(3)
}

function formatValue(value, unit) {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'number') return unit ? `${formatNumber(value)} ${unit}` : formatNumber(value)
  return value.text
}

function ratio(ours, original) {
  if (typeof ours !== 'number' || typeof original !== 'number' || original === 0) return '—'
  return `${formatNumber(ours / original)}×`
}

function formatTarget(target, unit, against) {
  if (!target) return '—'
  if (target.text) return target.text
  if (target.ratioAtMost !== undefined) return `≤ ${target.ratioAtMost.toFixed(1)}× ${against}`
  return `< ${target.below.toLocaleString('en-US')}${unit ? ' ' + unit : ''}`
}

/** 'met', 'NOT met', or '—' when there is no target or no figure to judge. */
function verdict(target, value, other) {
  if (!target || value === null || value === undefined) return '—'
  if (target.ok !== undefined) return typeof value === 'object' && value.ok !== undefined ? mark(value.ok) : '—'
  if (target.ratioAtMost !== undefined) {
    const comparable = typeof value === 'number' && typeof other === 'number' && other > 0
    return comparable ? mark(value / other <= target.ratioAtMost) : '—'
  }
  if (target.below === undefined) return '—'
  if (typeof value === 'number') return mark(value < target.below)
  // A censored figure ("> 61,000 ms") fails a target it already exceeds.
  const censored = typeof value === 'object' && typeof value.atLeast === 'number'
  return censored && value.atLeast >= target.below ? mark(false) : '—'
}

function mark(met) {
  return met ? 'met' : '**NOT met**'
}

function markdownTable(rows, { against = 'original' } = {}) {
  const lines = rows.map((r) => [
    r.figure,
    formatValue(r.ours, r.unit),
    formatValue(r[against], r.unit),
    r.compare === false ? '—' : ratio(r.ours, r[against]),
    formatTarget(r.target, r.unit, against),
    verdict(r.target, r.ours, r[against]),
  ])
  const head = header(against)
  return [head, head.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

module.exports = { markdownTable, verdict, formatNumber }
