'use strict'
// `npm run hosts`: the package under the JS runtimes other than Node that
// load Node addons, Bun and Deno, with Node as the reference.
//
// Installs pinned releases of Bun and Deno from the npm registry (`npm pack`
// of the platform package that carries the binary, nothing else downloaded)
// into .hosts/ (git-ignored), then runs each scenario as child processes of
// that host (scripts/hosts/scenario.cjs and esm.mjs, one JSON result line
// each), in a consumer folder whose node_modules holds the package as npm
// installs it: handover-native, and the binary in handover-native-<platform>.
//
//   load          require('handover-native') gives every export
//   ESM           named and default imports of 'handover-native' from an ES
//                 module are what require() gives
//   one process   an old and a young peer in one process: the old one's
//                 callback runs once, its complete file is written, 'handover'
//                 is emitted and peer.handover resolves; the process then
//                 ends by itself with code 0
//   two processes the same across two processes of the host (old listening,
//                 young broadcasting until the complete file appears); both
//                 end by themselves with code 0
//   old node      mixed: the old peer on Node, the young one on the host
//   young node    mixed: the old peer on the host, the young one on Node
//   status        a listener hears another object's UP, then its DOWN
//
// and prints a table: host × scenario → ok or FAIL, with the reason of each
// failure below it. Exit code 1 when a cell fails; every cell is required.
// Only linux-x64 with glibc installs Bun and Deno; elsewhere their rows say
// skipped and only Node runs.
//
//   node scripts/hosts.js [--hosts node,bun,deno]
//
// Network: every peer and status object uses unicast 127.0.0.1 (option
// `address`) on its own port in 47300-47399, so no packet leaves the machine.

const { execFileSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.join(__dirname, '..')
const CACHE = path.join(ROOT, '.hosts')
const SCENARIO = 'scenario.cjs'
const ESM = 'esm.mjs'
const BASE_PORT = 47300
const LAST_PORT = 47399
/** Inside the scenario: how long to wait for a handover or a status message. */
const SCENARIO_TIMEOUT_MS = 5000
/** A child still running this long after it started is killed and called hung. */
const CHILD_TIMEOUT_MS = 10_000

/** The releases run here: the newest 1.x of Bun and 2.x of Deno when pinned. */
const PINS = {
  bun: {
    version: '1.4.5',
    // Bun's default x64 build needs AVX2; the baseline build runs on any x64.
    package: () => (cpuHasAvx2() ? '@oven/bun-linux-x64' : '@oven/bun-linux-x64-baseline'),
    binary: 'bin/bun',
  },
  deno: {
    version: '2.9.6',
    // The `deno` package installs this one through an optional dependency and a postinstall script.
    package: () => '@deno/linux-x64-glibc',
    binary: 'deno',
  },
}

const HOSTS = ['node', 'bun', 'deno']
const COLUMNS = [
  { key: 'load', title: 'load' },
  { key: 'esm', title: 'ESM' },
  { key: 'one', title: 'one process' },
  { key: 'two', title: 'two processes' },
  { key: 'oldNode', title: 'old node → young host' },
  { key: 'youngNode', title: 'old host → young node' },
  { key: 'status', title: 'status UP/DOWN' },
]

// ---- installing ----

function cpuHasAvx2() {
  try {
    return /^flags\s*:.*\bavx2\b/m.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))
  } catch (error) {
    return false
  }
}

/** Why Bun and Deno are not installed here, or null when they are. */
function unsupportedPlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `only linux-x64 is pinned (this is ${process.platform}-${process.arch})`
  const header = process.report && process.report.getReport().header
  if (header && !header.glibcVersionRuntime) return 'only glibc builds are pinned (this is musl)'
  return null
}

/** .hosts/<host>/<package>@<version>/<binary>, fetched with `npm pack` on first use. */
function ensureHost(name) {
  const pin = PINS[name]
  const spec = `${pin.package()}@${pin.version}`
  const folder = path.join(CACHE, name, spec.replace('/', '+'))
  const binary = path.join(folder, pin.binary)
  if (!fs.existsSync(binary)) {
    fs.mkdirSync(path.dirname(folder), { recursive: true })
    const staging = fs.mkdtempSync(path.join(path.dirname(folder), '.download-'))
    try {
      process.stderr.write(`hosts: fetching ${spec} from the npm registry…\n`)
      const out = execFileSync('npm', ['pack', spec, '--pack-destination', staging, '--json', '--ignore-scripts'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: 600_000,
      })
      const tarball = path.join(staging, JSON.parse(out)[0].filename)
      const unpacked = path.join(staging, 'package')
      fs.mkdirSync(unpacked)
      // Only the binary: package/<binary> -> <folder>/<binary>.
      execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1', `package/${pin.binary}`])
      fs.renameSync(unpacked, folder)
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
    }
  }
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8', env: childEnv(), timeout: 30_000 })
  if (!version.includes(pin.version)) throw new Error(`${binary} --version says ${version.trim()}, not ${pin.version}`)
  return { binary, version: pin.version, package: pin.package() }
}

// ---- the consumer ----

/**
 * `dir` as a service's folder: package.json with the dependency, the
 * package in node_modules/handover-native (the files it publishes), each
 * binary built here in node_modules/handover-native-<platform> as the
 * prebuilt package, and the scenario scripts.
 */
function makeConsumer(dir) {
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  const write = (file, value) => fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n')
  write(path.join(dir, 'package.json'), {
    name: 'hosts-consumer',
    private: true,
    dependencies: { [manifest.name]: manifest.version },
  })
  const installed = path.join(dir, 'node_modules', manifest.name)
  fs.mkdirSync(installed, { recursive: true })
  for (const file of ['package.json', ...manifest.files]) {
    const from = path.join(ROOT, file)
    if (fs.statSync(from).isFile()) fs.copyFileSync(from, path.join(installed, file))
  }
  const binaries = fs.readdirSync(ROOT).filter((name) => /^handover\..+\.node$/.test(name))
  if (!binaries.length) throw new Error('no handover.<platform>.node here: run `npm run build` first')
  for (const binary of binaries) {
    const platformPackage = path.join(ROOT, 'npm', binary.split('.')[1])
    const target = path.join(dir, 'node_modules', `${manifest.name}-${binary.split('.')[1]}`)
    fs.mkdirSync(target)
    fs.copyFileSync(path.join(platformPackage, 'package.json'), path.join(target, 'package.json'))
    fs.copyFileSync(path.join(ROOT, binary), path.join(target, binary))
  }
  for (const file of [SCENARIO, ESM]) fs.copyFileSync(path.join(__dirname, 'hosts', file), path.join(dir, file))
}

// ---- running ----

/**
 * The environment of every child: without the library's settings (each
 * scenario passes its own options), with the broadcast addresses on
 * loopback as a second guard, and without anything Bun or Deno would send
 * or write outside .hosts/ (crash-report uploads, update checks, caches).
 */
function childEnv() {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(SHUTDOWN_|HANDOVER_|NETWORK_INTERFACE$|BALENA_|LOGLEVEL$|NAPI_RS_|NODE_OPTIONS$|BUN_|DENO_)/.test(key)) delete env[key]
  }
  return {
    ...env,
    SHUTDOWN_BROADCAST_ADDRESS: '127.0.0.1',
    HANDOVER_STATUS_BROADCAST_ADDRESS: '127.0.0.1',
    LOGLEVEL: 'error',
    DO_NOT_TRACK: '1',
    BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0',
    DENO_DIR: path.join(CACHE, 'deno-dir'),
    DENO_NO_UPDATE_CHECK: '1',
    DENO_NO_PROMPT: '1',
  }
}

/** The command line that runs `file` with one argument on a host. */
function commandLine(host, file, argument) {
  switch (host.name) {
    case 'node':
      return [host.binary, [file, argument]]
    case 'bun':
      return [host.binary, ['--no-install', '--no-env-file', file, argument]]
    case 'deno':
      // What a service needs: ffi to load the addon, read for require(), env
      // for the settings. The consumer's package.json declares the package.
      return [host.binary, ['run', '--allow-ffi', '--allow-read', '--allow-env', '--no-lock', file, argument]]
    default:
      throw new Error(`unknown host ${host.name}`)
  }
}

/** A scenario child: its JSON lines, its exit, a way to wait for an event. */
class Child {
  constructor(host, spec, cwd, file = SCENARIO) {
    const [command, args] = commandLine(host, path.join(cwd, file), JSON.stringify(spec))
    this.started = Date.now()
    this.process = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    this.events = []
    this.result = null
    this.stderr = ''
    this.timedOut = false
    this.waiters = []
    this.process.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-8000)
    })
    readline.createInterface({ input: this.process.stdout }).on('line', (line) => this.line(line))
    const timer = setTimeout(() => {
      this.timedOut = true
      this.process.kill('SIGKILL')
    }, CHILD_TIMEOUT_MS)
    this.exited = new Promise((resolve) => {
      const ended = (code, signal) => {
        if (this.code !== undefined) return
        clearTimeout(timer)
        this.code = code
        this.signal = signal
        this.ms = Date.now() - this.started
        for (const waiter of [...this.waiters]) waiter(false)
        resolve(this)
      }
      this.process.on('error', (error) => {
        this.spawnError = error
        ended(null, null)
      })
      this.process.on('close', ended)
    })
  }

  line(text) {
    let value
    try {
      value = JSON.parse(text)
    } catch (error) {
      return // a log line
    }
    if (value && value.result) this.result = value.result
    if (value && typeof value.event === 'string') {
      this.events.push(value.event)
      for (const waiter of [...this.waiters]) waiter(value.event)
    }
  }

  /** True once the child reported `event`, false if it ended first. */
  waitFor(event) {
    if (this.events.includes(event)) return Promise.resolve(true)
    if (this.code !== undefined) return Promise.resolve(false)
    return new Promise((resolve) => {
      const waiter = (seen) => {
        if (seen !== false && seen !== event) return
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        resolve(seen === event)
      }
      this.waiters.push(waiter)
    })
  }

  kill() {
    if (this.code === undefined) this.process.kill('SIGKILL')
  }

  /** null when it passed, else why not, in one line. */
  failure() {
    if (this.spawnError) return `could not start: ${this.spawnError.message}`
    const ended = describeExit(this.code, this.signal)
    if (this.timedOut) {
      const after = this.result && this.result.ok ? 'passed but did not exit by itself' : 'hung'
      return `${after}: still running after ${CHILD_TIMEOUT_MS / 1000} s${this.result && !this.result.ok ? ` (${this.result.reason})` : ''}`
    }
    if (this.result && !this.result.ok) return `${this.result.reason} (${ended})`
    if (this.result && this.code === 0) return null
    if (this.result) return `passed, then ${ended}${crashLine(this.stderr)}`
    return `${describeExit(this.code, this.signal)}, no result line${crashLine(this.stderr)}`
  }
}

/** How a child ended; a fatal signal also as the exit status a shell shows (128 + its number). */
function describeExit(code, signal) {
  if (signal) return `killed by ${signal} (exit ${128 + os.constants.signals[signal]} in a shell)`
  const name = code > 128 && Object.keys(os.constants.signals).find((key) => os.constants.signals[key] === code - 128)
  return name ? `exit ${code} (${name})` : `exit ${code}`
}

/** The line of stderr that says why a process died, if one does. */
function crashLine(stderr) {
  const lines = stderr
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  const telling = lines.find((line) => /panic|fatal|abort|segmentation|uncaught|error:/i.test(line)) || lines[lines.length - 1]
  return telling ? `: ${telling.slice(0, 200)}` : ''
}

let nextPort = BASE_PORT
function port() {
  if (nextPort > LAST_PORT) throw new Error(`more scenarios than ports in ${BASE_PORT}-${LAST_PORT}`)
  return nextPort++
}

/** A spec for scenario.cjs, with its own port and temporary folder. */
function scenarioSpec(role, dir) {
  const now = Date.now()
  const portNumber = port()
  return {
    role,
    port: portNumber,
    completeFile: path.join(dir, `complete-${portNumber}`),
    youngCompleteFile: path.join(dir, `young-must-not-write-${portNumber}`),
    oldStartedAt: now - 60_000,
    youngStartedAt: now,
    timeoutMs: SCENARIO_TIMEOUT_MS,
  }
}

const passed = (ms) => ({ ok: true, text: `ok ${ms} ms` })
const failed = (reason) => ({ ok: false, text: 'FAIL', reason })

/** One child of `host` in one role. */
async function single(host, role, dir, file = SCENARIO) {
  const child = await new Child(host, scenarioSpec(role, dir), dir, file).exited
  const failure = child.failure()
  return failure ? failed(failure) : passed(child.ms)
}

/** An old peer on `oldHost` listening, then a young one on `youngHost` broadcasting. */
async function pair(oldHost, youngHost, dir) {
  const spec = scenarioSpec(null, dir)
  const started = Date.now()
  const old = new Child(oldHost, { ...spec, role: 'old' }, dir)
  if (!(await old.waitFor('listening'))) {
    await old.exited
    return failed(`old (${oldHost.name}): ${old.failure() || 'ended before listening'}`)
  }
  const young = new Child(youngHost, { ...spec, role: 'young' }, dir)
  await old.exited
  // A young peer waits for a complete file that a dead old peer never writes.
  if (old.failure()) young.kill()
  await young.exited
  const failures = []
  if (old.failure()) failures.push(`old (${oldHost.name}): ${old.failure()}`)
  if (young.failure() && !(old.failure() && young.signal === 'SIGKILL' && !young.timedOut)) {
    failures.push(`young (${youngHost.name}): ${young.failure()}`)
  }
  return failures.length ? failed(failures.join('; ')) : passed(Date.now() - started)
}

async function runHost(host, node) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `handover-hosts-${host.name}-`))
  try {
    makeConsumer(dir)
    const cells = {}
    cells.load = await single(host, 'load', dir)
    cells.esm = await single(host, 'esm', dir, ESM)
    cells.one = await single(host, 'one', dir)
    cells.two = await pair(host, host, dir)
    if (host.name !== 'node') {
      cells.oldNode = await pair(node, host, dir)
      cells.youngNode = await pair(host, node, dir)
    }
    cells.status = await single(host, 'status', dir)
    return cells
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---- report ----

function report(rows) {
  const notes = []
  const cellText = (row, column) => {
    if (row.skipped) return 'skipped'
    const cell = row.cells[column.key]
    if (!cell) return '—'
    if (cell.ok) return cell.text
    notes.push(`[${notes.length + 1}] ${row.label}, ${column.title}: ${cell.reason}`)
    return `FAIL [${notes.length}]`
  }
  const header = ['host', ...COLUMNS.map((c) => c.title)]
  const body = rows.map((row) => [row.label, ...COLUMNS.map((column) => cellText(row, column))])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i].length)))
  const line = (values) => `| ${values.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`
  const table = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)]
  for (const row of rows) if (row.skipped) notes.push(`${row.label}: skipped, ${row.skipped}`)
  return [...table, ...(notes.length ? ['', ...notes] : [])].join('\n')
}

function parseFlags(argv) {
  const flags = { hosts: HOSTS }
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s)
    if (name === '--help' || name === '-h') flags.help = true
    else if (name === '--hosts') {
      flags.hosts = (inline !== undefined ? inline : argv[++i] || '').split(',').map((h) => h.trim()).filter(Boolean)
      const unknown = flags.hosts.filter((h) => !HOSTS.includes(h))
      if (unknown.length || !flags.hosts.length) throw new Error(`--hosts takes some of ${HOSTS.join(',')}`)
    } else throw new Error(`unknown argument '${argv[i]}' (try --help)`)
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
  const started = Date.now()
  const node = { name: 'node', binary: process.execPath, version: process.versions.node }
  const unsupported = unsupportedPlatform()
  const rows = []
  for (const name of flags.hosts) {
    if (name === 'node') {
      rows.push({ label: `node ${node.version}`, cells: await runHost(node, node) })
      continue
    }
    if (unsupported) {
      rows.push({ label: name, skipped: unsupported })
      continue
    }
    let host
    try {
      host = { name, ...ensureHost(name) }
    } catch (error) {
      rows.push({ label: `${name} ${PINS[name].version}`, cells: { load: failed(`not installed: ${error.message.split('\n')[0]}`) } })
      continue
    }
    process.stderr.write(`hosts: ${name} ${host.version} (${host.package})…\n`)
    rows.push({ label: `${name} ${host.version}`, cells: await runHost(host, node) })
  }
  const failures = rows.filter((row) => row.cells && Object.values(row.cells).some((cell) => !cell.ok))
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  process.stdout.write(`\n${report(rows)}\n`)
  process.stdout.write(`\n${failures.length ? `FAILED on ${failures.map((r) => r.label).join(', ')}` : 'all passed'} (${seconds} s)\n`)
  return failures.length ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    process.stderr.write(`hosts: ${error.message}\n`)
    process.exitCode = 1
  },
)
