'use strict'
// Runs one benchmark worker (benchmark/workers/*.js) in a fresh Node
// process, inside a private network namespace when we may create one, and
// collects the result it sends over the IPC channel. The worker's stdout
// (where both implementations log) goes to /dev/null; the tail of its
// stderr is kept to explain a crash.

const path = require('node:path')
const { spawn } = require('node:child_process')
const { spawnIsolated } = require('../../test-support/isolated.js')

const WORKERS = path.join(__dirname, '..', 'workers')
const STDERR_TAIL = 2000

/**
 * Resolves with { result } when the worker reports, or with
 * { crashed: { code, signal, stderr } } when it exits without a result.
 */
function runWorker(name, config, { isolated }) {
  const argv = [path.join(WORKERS, `${name}.js`), JSON.stringify(config)]
  const options = { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }
  const child = isolated ? spawnIsolated(process.execPath, argv, options) : spawn(process.execPath, argv, options)
  return new Promise((resolve, reject) => {
    let stderr = ''
    let result
    child.stderr.on('data', (chunk) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL)
    })
    child.on('message', (message) => {
      if (message.type === 'result') result = message.result
      if (message.type === 'error') reject(new Error(`worker ${name} failed: ${message.message}`))
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      resolve(result !== undefined ? { result } : { crashed: { code, signal, stderr: stderr.trim() } })
    })
  })
}

/** Like runWorker, but a worker that dies without a result is an error of the benchmark itself. */
async function runWorkerOrThrow(name, config, options) {
  const { result, crashed } = await runWorker(name, config, options)
  if (crashed) {
    throw new Error(`worker ${name} exited (code ${crashed.code}, signal ${crashed.signal}) without a result:\n${crashed.stderr}`)
  }
  return result
}

module.exports = { runWorker, runWorkerOrThrow }
