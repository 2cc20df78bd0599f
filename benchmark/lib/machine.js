'use strict'
// What the figures were measured on, printed above the tables.

const os = require('node:os')
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')

function describeMachine() {
  const cpus = os.cpus()
  return {
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    commit: gitCommit(),
  }
}

/** The commit measured (read-only git call), so a table can be traced back. */
function gitCommit() {
  const result = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' })
  if (result.status !== 0) return null
  const measured = ['src', 'index.js', 'router.js', 'binding.js', 'binding-errors.js']
  // --no-optional-locks: a status must not refresh (write) the index.
  const status = ['--no-optional-locks', 'status', '--porcelain', '--', ...measured]
  const dirty = spawnSync('git', status, { cwd: ROOT, encoding: 'utf8' })
  return result.stdout.trim() + (dirty.stdout && dirty.stdout.trim() ? ' (with uncommitted changes)' : '')
}

function machineMarkdown(m) {
  return [
    `- CPU: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM`,
    `- Kernel: ${m.kernel}`,
    `- Node: ${m.node}`,
    `- Commit: ${m.commit || 'unknown'}`,
  ].join('\n')
}

module.exports = { describeMachine, machineMarkdown }
