'use strict'
// `--timestamp`: ms since the epoch, or any date Date.parse understands.

const { UsageError } = require('./errors')

function parseTimestamp(value) {
  if (value === undefined) return new Date()
  const date = /^-?\d+$/.test(value) ? new Date(Number(value)) : new Date(value)
  if (Number.isNaN(date.valueOf())) {
    throw new UsageError(
      `--timestamp must be ms since the epoch (like 1700000000000) or a date (like 2023-11-14T22:13:20Z); got '${value}'`,
    )
  }
  return date
}

module.exports = { parseTimestamp }
