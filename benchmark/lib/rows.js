'use strict'
// Builds table rows (see table.js) the same way in every suite.

/**
 * Returns row(figure, unit, compute, extra): compute() is applied to what
 * resultOf(impl) gives for ours and for the original (or the row shows that
 * an implementation was skipped); extra adds { target, compare }.
 */
function rowBuilder(ctx, resultOf) {
  const value = (impl, compute) => ctx.measure(impl, () => compute(resultOf(impl)))
  return (figure, unit, compute, extra = {}) => ({
    figure,
    unit,
    ours: value('ours', compute),
    original: value('original', compute),
    ...extra,
  })
}

module.exports = { rowBuilder }
