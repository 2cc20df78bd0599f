'use strict'
// Small helpers shared by workers.

const fs = require('node:fs')

/** Native threads of this process: one entry per task in /proc. */
function threadCount() {
  return fs.readdirSync('/proc/self/task').length
}

/** A promise that rejects after ms unless `promise` settles first. */
function withTimeout(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A promise plus the function that resolves it. */
function deferred() {
  let resolve
  const promise = new Promise((r) => {
    resolve = r
  })
  return { promise, resolve }
}

const hrtimeNs = () => process.hrtime.bigint()

module.exports = { threadCount, withTimeout, deferred, hrtimeNs }
