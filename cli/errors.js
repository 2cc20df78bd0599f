'use strict'
// Two kinds of failure, two exit codes: the user can fix the command line or
// configuration (2), or something on the machine got in the way (1).

/** A bad flag, value or setting: exit code 2. */
class UsageError extends Error {}

/** The command was right but could not do its job (port in use, send failed): exit code 1. */
class Failure extends Error {}

const EXIT = { ok: 0, failure: 1, usage: 2 }

/** Exit code for anything a command threw. Our library throws TypeError/RangeError for bad input. */
function exitCodeOf(error) {
  if (error instanceof UsageError || error instanceof TypeError || error instanceof RangeError) return EXIT.usage
  return EXIT.failure
}

/**
 * A whole number given as text (a flag's value or a variable's), or a
 * UsageError naming where it came from: `${name} must be ${what}; got '…'`.
 */
function wholeNumber(text, name, { what = 'a whole number', min = 0 } = {}) {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${name} must be ${what}; got '${text}'`)
  return Number(text)
}

module.exports = { UsageError, Failure, EXIT, exitCodeOf, wholeNumber }
