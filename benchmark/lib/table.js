'use strict'
// Markdown tables of rows: ours, the original, their ratio, the SPEC §7
// target and whether ours meets it.
//
// A row is { figure, unit, ours, original, target? }. A value is a number
// (in `unit`) or an object { text, ok?, atLeast? }: `atLeast` marks a
// censored figure ("> 61 s" when a run timed out), `ok` a yes/no outcome.
// A target is { below: number } or { ok: true, text }.

const HEADER = ['figure', 'ours', 'original', 'ours / original', 'target', 'met']

function formatNumber(v) {
  const a = Math.abs(v)
  if (a >= 1000) return Math.round(v).toLocaleString('en-US')
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

function formatTarget(target, unit) {
  if (!target) return '—'
  if (target.text) return target.text
  return `< ${formatNumber(target.below)}${unit ? ' ' + unit : ''}`
}

/** 'met', 'NOT met', or '—' when there is no target or no figure to judge. */
function verdict(target, value) {
  if (!target || value === null || value === undefined) return '—'
  if (target.ok !== undefined) return typeof value === 'object' && value.ok !== undefined ? mark(value.ok) : '—'
  if (typeof value === 'number') return mark(value < target.below)
  if (typeof value === 'object' && typeof value.atLeast === 'number' && value.atLeast >= target.below) return mark(false)
  return '—'
}

function mark(met) {
  return met ? 'met' : '**NOT met**'
}

function markdownTable(rows) {
  const lines = rows.map((r) => [
    r.figure,
    formatValue(r.ours, r.unit),
    formatValue(r.original, r.unit),
    ratio(r.ours, r.original),
    formatTarget(r.target, r.unit),
    verdict(r.target, r.ours),
  ])
  return [HEADER, HEADER.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n')
}

module.exports = { markdownTable, verdict, formatNumber }
