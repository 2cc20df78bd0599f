'use strict'
// Runs a built addon on this machine: natively, or under qemu-user with a
// Node for that CPU from the npm registry. Three steps, each recorded as
// pass, fail or n/a with a note: it loads; two processes hand over with the
// default settings; the smoke checks (smoke.js) pass and the process exits
// on its own. Everything that sends runs in a private network namespace
// with the multicast range routed to loopback, so nothing leaves the machine.

const { spawn } = require('node:child_process')
const path = require('node:path')
const { spawnIsolated } = require('../../test-support/isolated')
const { ROOT } = require('./toolchain')

const STEP_TIMEOUT_MS = 120_000

/** Runs `argv` (in a private namespace when `isolated`), collecting output; never rejects. */
function collect(argv, { env, isolated }) {
  return new Promise((resolve) => {
    const [command, ...args] = argv
    const options = { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }
    const child = isolated ? spawnIsolated(command, args, options) : spawn(command, args, options)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)))
    const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS)
    child.on('error', (error) => (stderr += String(error)))
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** The last JSON line a step printed, or null. */
function lastJson(stdout) {
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'))
  try {
    return line ? JSON.parse(line) : null
  } catch {
    return null
  }
}

const firstLine = (text) => (text || '').trim().split('\n').filter(Boolean).slice(-1)[0] || ''
const pass = (note = '') => ({ state: 'pass', note })
const fail = (note) => ({ state: 'fail', note })
const notRun = (note) => ({ state: 'n/a', note })

/** `node` argv for the target: this Node, or qemu-user with the foreign one. */
function nodeCommand(target, foreignNode) {
  if (target.run === 'native') return [process.execPath]
  return [target.qemu.binary, '-L', target.qemu.sysroot, foreignNode]
}

async function loads(node, env) {
  const probe = "const h = require('./index.js'); console.log(JSON.stringify({ arch: process.arch, version: process.version, exports: Object.keys(h) }))"
  const result = await collect([...node, '-e', probe], { env })
  const report = lastJson(result.stdout)
  if (result.code !== 0 || !report) return fail(firstLine(result.stderr) || `exit ${result.code}`)
  return pass(`Node ${report.version} ${report.arch}`)
}

async function handsOver(node, env, addon) {
  const spec = JSON.stringify({ node, addon })
  const result = await collect([process.execPath, path.join(__dirname, 'handover-check.js'), spec], { env, isolated: true })
  const report = lastJson(result.stdout)
  if (!report) return fail(firstLine(result.stderr) || `exit ${result.code}`)
  if (!report.ok) return fail(report.error || JSON.stringify(report))
  const refused = report.oldStats.refusedSocketOptions || []
  return pass(refused.length ? `default group; OS refused ${refused.join(', ')}: degraded` : 'default group')
}

async function smoke(node, env) {
  const result = await collect([...node, path.join(__dirname, 'smoke.js')], { env, isolated: true })
  const report = lastJson(result.stdout)
  if (!report) return fail(firstLine(result.stderr) || `exit ${result.code}`)
  const failed = report.checks.filter((c) => !c.ok)
  const exited = result.code === 0 && result.signal === null
  const total = report.checks.length + 1
  const passed = report.checks.length - failed.length + (exited ? 1 : 0)
  const problems = failed.map((c) => `${c.name}: ${c.detail}`)
  if (!exited) problems.push(`did not exit on its own after close() (${result.signal || `exit ${result.code}`})`)
  return problems.length ? fail(`smoke ${passed}/${total}: ${problems.join('; ')}`) : pass(`smoke ${passed}/${total}`)
}

/**
 * Jest files run against each build. Natively, the in-process suites; under
 * qemu-user only the one that sets no multicast interface: qemu 7.2 refuses
 * IP_MULTICAST_IF, which the loopback-pinned suites need (smoke.js covers
 * the default group there instead). In band: workers would be spawned as
 * this machine's Node, not the emulated one.
 */
const JEST_SUBSETS = {
  native: ['peer', 'status', 'validation', 'exit'],
  qemu: ['validation'],
}

async function jestSubset(node, env, run) {
  const files = JEST_SUBSETS[run].map((name) => `__test__/${name}.test.js`)
  const jest = path.join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js')
  const result = await collect([...node, jest, '--ci', '--runInBand', ...files], { env, isolated: true })
  const summary = /^Tests:.*$/m.exec(result.stderr)
  const note = `jest ${files.map((f) => path.basename(f, '.test.js')).join(',')}: ${summary ? summary[0].slice(6).trim() : firstLine(result.stderr)}`
  return result.code === 0 ? pass(note) : fail(note)
}

/** Runs the steps for a target whose Node can run here; a failed load skips the rest. */
async function runAll(target, addon, foreignNode) {
  const node = nodeCommand(target, foreignNode)
  const env = { ...process.env, HANDOVER_NATIVE_LIBRARY_PATH: addon }
  const loaded = await loads(node, env)
  if (loaded.state !== 'pass') return { loads: loaded, handsOver: notRun('did not load'), tests: notRun('did not load') }
  const handedOver = await handsOver(node, env, addon)
  const smoked = await smoke(node, env)
  const jest = await jestSubset(node, env, target.run)
  const tests = { state: smoked.state === 'pass' ? jest.state : 'fail', note: `${smoked.note}; ${jest.note}` }
  return { loads: loaded, handsOver: handedOver, tests }
}

module.exports = { runAll, notRun, pass, fail }
