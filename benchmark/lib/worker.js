'use strict'
// Runs one benchmark worker (benchmark/workers/*.js) in a fresh Node
// process, inside private namespaces when we may create them, and
// collects the result it sends over the IPC channel. The worker's stdout
// (where both implementations log) goes to /dev/null; the tail of its
// stderr is kept to explain a crash.

const path = require('node:path')
const { spawn } = require('node:child_process')
const { SETUP } = require('../../test-support/isolated.js')

const WORKERS = path.join(__dirname, '..', 'workers')
const STDERR_TAIL = 2000
// The original always writes /tmp/balena/handover-complete. Should that
// folder exist (another suite may watch it), a private mount namespace
// hides it behind an empty tmpfs, so no benchmark handover lands there.
const SHADOW_COMPLETE_FOLDER = '[ -d /tmp/balena ] && mount -t tmpfs tmpfs /tmp/balena; '

/** `node argv...` in a fresh network namespace (loopback only) and a private mount namespace. */
function spawnIsolated(argv, options) {
  const unshare = ['-n', '-m', '--propagation', 'private']
  return spawn('unshare', [...unshare, 'sh', '-c', SHADOW_COMPLETE_FOLDER + SETUP, process.execPath, ...argv], options)
}

/**
 * Starts a worker: { child, done }, where done resolves with the result it
 * reports, or rejects when it fails or exits without one.
 */
function startWorker(name, config, { isolated }) {
  const argv = [path.join(WORKERS, `${name}.js`), JSON.stringify(config)]
  const options = { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }
  const child = isolated ? spawnIsolated(argv, options) : spawn(process.execPath, argv, options)
  const done = new Promise((resolve, reject) => {
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
      if (result !== undefined) return resolve(result)
      reject(new Error(`worker ${name} exited (code ${code}, signal ${signal}) without a result:\n${stderr.trim()}`))
    })
  })
  return { child, done }
}

/** Runs a worker to its end; resolves with its result. */
function runWorker(name, config, options) {
  return startWorker(name, config, options).done
}

module.exports = { startWorker, runWorker }
