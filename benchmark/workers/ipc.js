'use strict'
// The worker side of benchmark/lib/worker.js: read the config, report a
// result (or an error) over the IPC channel, then exit.

function workerConfig() {
  return JSON.parse(process.argv[2] || '{}')
}

function send(message) {
  return new Promise((resolve) => process.send(message, resolve))
}

/** Runs main(config) and reports what it returns; the process exits either way. */
function runMain(main) {
  main(workerConfig()).then(
    async (result) => {
      await send({ type: 'result', result })
      process.exit(0)
    },
    async (error) => {
      await send({ type: 'error', message: (error && error.stack) || String(error) })
      process.exit(1)
    },
  )
}

module.exports = { workerConfig, send, runMain }
