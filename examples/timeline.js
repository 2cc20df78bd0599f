'use strict'
// The demo's output: one line per event, stamped with the time since the
// demo started, and the actor that saw it.

function createTimeline(write = (line) => process.stdout.write(line + '\n')) {
  const start = process.hrtime.bigint()
  const seconds = () => Number(process.hrtime.bigint() - start) / 1e9
  return {
    seconds,
    log(actor, message) {
      write(`+${seconds().toFixed(3)}s ${actor.padEnd(10)} ${message}`)
    },
  }
}

module.exports = { createTimeline }
