#!/usr/bin/env node
'use strict'
// A dress rehearsal of the release workflow against a registry on 127.0.0.1
// (test-support/registry.js), then a consumer's view of what was published.
//
//   npm run rehearse [-- --platforms linux-x64-gnu,...] [--artifacts DIR]
//                       [--local-build] [--port N] [--keep]
//
// 1. Gathers one binary per platform from artifacts/ (`npm run cross` writes
//    them; missing ones are built with `node scripts/cross.js build`).
//    --local-build takes this machine's binary from the checkout's own build
//    (`npm run build`) instead, so a test needs no cross toolchain.
// 2. Runs the publish job's own commands: `stage-release.js stage`, then
//    `stage-release.js publish` (platform packages first, main package last).
// 3. For every platform, in a fresh service folder with no Rust reachable,
//    installs `handover-native` and `handover-lib@npm:handover-native` with
//    `npm install --os --cpu --libc`, and checks the package npm picked, the
//    published manifests and the binary's format. On this machine's own
//    platform it also loads the addon under both names and runs a real
//    handover between two processes on loopback.
//
// Prints a table; exits non-zero on any failure. Work happens in a temporary
// folder (removed unless --keep); the checkout is only read.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startRegistry } = require('../test-support/registry')

const ROOT = path.join(__dirname, '..')
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare']
const TOKEN = 'rehearsal-token-not-a-secret'

// What each platform package must be, written down independently of npm/*
// so that a wrong os/cpu/libc there shows up as a failure here.
// elf: e_machine; macho: cputype; pe: machine (see binaryFormat()).
const PLATFORMS = {
  'linux-x64-gnu': { os: 'linux', cpu: 'x64', libc: 'glibc', elf: 0x3e },
  'linux-arm64-gnu': { os: 'linux', cpu: 'arm64', libc: 'glibc', elf: 0xb7 },
  'linux-arm-gnueabihf': { os: 'linux', cpu: 'arm', libc: 'glibc', elf: 0x28 },
  'linux-x64-musl': { os: 'linux', cpu: 'x64', libc: 'musl', elf: 0x3e },
  'linux-arm64-musl': { os: 'linux', cpu: 'arm64', libc: 'musl', elf: 0xb7 },
  'darwin-x64': { os: 'darwin', cpu: 'x64', macho: 0x01000007 },
  'darwin-arm64': { os: 'darwin', cpu: 'arm64', macho: 0x0100000c },
  'win32-x64-msvc': { os: 'win32', cpu: 'x64', pe: 0x8664 },
}

// ---------------------------------------------------------------- plumbing

function log(message) {
  process.stderr.write(`rehearse: ${message}\n`)
}

class StepError extends Error {}

/** Runs a command to completion without blocking the in-process registry. */
function exec(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', (error) => resolve({ code: -1, stdout, stderr: stderr + String(error) }))
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Like exec(), but a failure stops the rehearsal with the command's output. */
async function mustExec(what, command, args, options) {
  const result = await exec(command, args, options)
  if (result.code !== 0) throw new StepError(`${what} failed (exit ${result.code}):\n${result.stdout}${result.stderr}`)
  return result
}

function parseArgs(argv) {
  const options = { platforms: Object.keys(PLATFORMS), artifacts: path.join(ROOT, 'artifacts'), port: 23500 }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    if (flag === '--platforms') options.platforms = argv[++i].split(',')
    else if (flag === '--artifacts') options.artifacts = path.resolve(argv[++i])
    else if (flag === '--port') options.port = Number(argv[++i])
    else if (flag === '--local-build') options.localBuild = true
    else if (flag === '--keep') options.keep = true
    else throw new StepError(`unknown option ${flag}`)
  }
  const unknown = options.platforms.filter((p) => !PLATFORMS[p])
  if (unknown.length) throw new StepError(`unknown platform(s): ${unknown.join(', ')}`)
  return options
}

/** This machine's platform in napi's naming, or null when it builds none of ours. */
function hostPlatform() {
  const libc = process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl') : undefined
  const match = Object.entries(PLATFORMS).find(([, p]) => p.os === process.platform && p.cpu === process.arch && p.libc === libc)
  return match ? match[0] : null
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

/** Every file under `dir`, as sorted relative paths with forward slashes. */
function listFiles(dir, prefix = '') {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory() ? listFiles(path.join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
    )
    .sort()
}

// ------------------------------------------------------- 1. the artifacts

/** Builds the missing binaries with the project's cross build (writes to artifacts/). */
async function buildMissing(missing, options) {
  if (options.artifacts !== path.join(ROOT, 'artifacts')) {
    throw new StepError(`no binary for ${missing.join(', ')} in ${options.artifacts}`)
  }
  const cross = path.join(ROOT, 'scripts', 'cross.js')
  if (!fs.existsSync(cross)) throw new StepError(`no binary for ${missing.join(', ')} and no scripts/cross.js to build them`)
  // One full build is cheaper than eight single ones (shared setup).
  const runs = missing.length === Object.keys(PLATFORMS).length ? [['build']] : missing.map((p) => ['build', '--target', p])
  for (const args of runs) {
    log(`node scripts/cross.js ${args.join(' ')} (may take minutes)`)
    await mustExec(`cross build ${args.join(' ')}`, process.execPath, [cross, ...args], { cwd: ROOT })
  }
}

/** A flat folder of handover.<platform>.node, as the workflow's download step makes. */
async function gatherArtifacts(options, work) {
  const host = hostPlatform()
  const source = (platform) =>
    options.localBuild && platform === host
      ? path.join(ROOT, `handover.${platform}.node`)
      : path.join(options.artifacts, `handover.${platform}.node`)
  if (options.localBuild && host && !fs.existsSync(source(host))) {
    throw new StepError(`--local-build: no ${source(host)}; run \`npm run build\` first`)
  }
  const missing = options.platforms.filter((p) => !fs.existsSync(source(p)))
  if (missing.length) await buildMissing(missing, options)

  const dir = path.join(work, 'artifacts')
  fs.mkdirSync(dir)
  for (const platform of options.platforms) fs.copyFileSync(source(platform), path.join(dir, `handover.${platform}.node`))
  return dir
}

// Machine codes in ELF, Mach-O and PE headers, named for the table.
const MACHINE_NAMES = { 0x3e: 'x86-64', 0xb7: 'aarch64', 0x28: 'arm', 0x01000007: 'x86-64', 0x0100000c: 'arm64', 0x8664: 'x64' }
const machineName = (code) => MACHINE_NAMES[code] || `0x${code.toString(16)}`

/**
 * What the binary is, from its header: 'ELF x86-64 glibc', 'Mach-O arm64',
 * 'PE x64'... glibc and musl builds differ in their symbol versions: only a
 * glibc build asks for GLIBC_x.y.
 */
function binaryFormat(file) {
  const data = fs.readFileSync(file)
  if (data.length >= 64 && data.readUInt32BE(0) === 0x7f454c46) {
    const machine = data.readUInt16LE(18)
    const libc = /GLIBC_2\.[0-9]/.test(data.toString('latin1')) ? 'glibc' : 'musl'
    return { elf: machine, libc, text: `ELF ${machineName(machine)} ${libc}` }
  }
  if (data.length >= 64 && data.readUInt32LE(0) === 0xfeedfacf) {
    const cputype = data.readUInt32LE(4)
    return { macho: cputype, text: `Mach-O ${machineName(cputype)}` }
  }
  if (data.length >= 64 && data.toString('latin1', 0, 2) === 'MZ') {
    const header = data.readUInt32LE(0x3c)
    const isPe = header + 6 <= data.length && data.toString('latin1', header, header + 4) === 'PE\0\0'
    const machine = isPe ? data.readUInt16LE(header + 4) : -1
    return { pe: machine, text: isPe ? `PE ${machineName(machine)}` : 'MZ without a PE header' }
  }
  return { text: 'not a binary' }
}

function checkBinary(platform, file) {
  const expected = PLATFORMS[platform]
  const found = binaryFormat(file)
  const fits = ['elf', 'macho', 'pe'].every((k) => expected[k] === found[k]) && (!expected.libc || expected.libc === found.libc)
  return fits ? `ok (${found.text})` : `FAIL: ${found.text}`
}

// -------------------------------------------------- 2. stage and publish

/** npm configuration that talks to the rehearsal registry and nothing else. */
function npmEnvironment(registry, work) {
  const userconfig = path.join(work, 'npmrc')
  const host = registry.url.replace(/^http:/, '')
  fs.writeFileSync(userconfig, `registry=${registry.url}\n${host}:_authToken=${TOKEN}\n`)
  const env = {}
  // Settings inherited from an outer `npm run` must not leak in (its
  // registry, cache or userconfig), nor a binding path that would make the
  // loader skip the installed package.
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && !['HANDOVER_NATIVE_LIBRARY_PATH', 'NAPI_RS_NATIVE_LIBRARY_PATH', 'NODE_PATH', 'NODE_OPTIONS'].includes(name)) env[name] = value
  }
  return {
    ...env,
    npm_config_userconfig: userconfig,
    npm_config_registry: registry.url,
    npm_config_cache: path.join(work, 'npm-cache'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  }
}

/** The publish job's two commands, in the same order. */
async function stageAndPublish(options, artifacts, env, work) {
  const stageScript = path.join(ROOT, 'scripts', 'stage-release.js')
  const staged = path.join(work, 'staged')
  const subset = options.platforms.length < Object.keys(PLATFORMS).length ? ['--platforms', options.platforms.join(',')] : []
  log(`stage-release.js stage (${options.platforms.length} platform(s))`)
  await mustExec('stage', process.execPath, [stageScript, 'stage', '--out', staged, '--artifacts', artifacts, ...subset], { cwd: ROOT, env })
  log('stage-release.js publish')
  await mustExec('publish', process.execPath, [stageScript, 'publish', staged], { cwd: ROOT, env })
}

/** Every package was published once, and the main package last. */
function checkPublishOrder(registry, platforms) {
  const names = registry.published.map((p) => p.name)
  const expected = [...platforms.map((p) => `handover-native-${p}`), 'handover-native']
  if ([...names].sort().join() !== [...expected].sort().join()) {
    throw new StepError(`published ${names.join(', ')}; expected ${expected.join(', ')}`)
  }
  if (names[names.length - 1] !== 'handover-native') throw new StepError(`the main package was not published last: ${names.join(', ')}`)
}

// ------------------------------------------------ 3. a consumer's view

/** PATH without any cargo/rustup folder, and Rust's homes pointing at empty folders. */
function withoutRust(env, work) {
  const empty = (name) => fs.mkdtempSync(path.join(work, `${name}-`))
  const PATH = env.PATH.split(path.delimiter)
    .filter((entry) => !/cargo|rustup/i.test(entry))
    .join(path.delimiter)
  return { ...env, PATH, CARGO_HOME: empty('cargo-home'), RUSTUP_HOME: empty('rustup-home') }
}

async function assertNoRust(env) {
  for (const tool of ['cargo', 'rustc']) {
    const result = await exec(tool, ['--version'], { env })
    if (result.code === 0) throw new StepError(`${tool} is still reachable without the Rust PATH entries: ${result.stdout.trim()}`)
  }
}

async function installFor(platform, version, env, work) {
  const { os: osName, cpu, libc } = PLATFORMS[platform]
  const dir = path.join(work, `service-${platform}`)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'rehearsal-service', version: '1.0.0', private: true }))
  const flags = [`--os=${osName}`, `--cpu=${cpu}`, ...(libc ? [`--libc=${libc}`] : [])]
  const specs = [`handover-native@${version}`, `handover-lib@npm:handover-native@${version}`]
  const result = await exec('npm', ['install', ...flags, ...specs], { cwd: dir, env })
  return { dir, result }
}

/** The platform packages npm put in node_modules: exactly the one for `platform`. */
function checkPicked(platform, dir) {
  const picked = fs.readdirSync(path.join(dir, 'node_modules')).filter((n) => n.startsWith('handover-native-'))
  const wanted = `handover-native-${platform}`
  const aliasName = readJson(path.join(dir, 'node_modules', 'handover-lib', 'package.json')).name
  if (aliasName !== 'handover-native') return `FAIL: handover-lib is ${aliasName}`
  if (picked.length === 1 && picked[0] === wanted) return wanted
  return `FAIL: ${picked.join(', ') || 'none'}`
}

/** The install-time and provenance rules for one published manifest; [] when it keeps them. */
function manifestProblems(manifest) {
  const problems = []
  const scripts = INSTALL_SCRIPTS.filter((name) => manifest.scripts && manifest.scripts[name])
  if (scripts.length) problems.push(`${manifest.name} has ${scripts.join(', ')}`)
  if (manifest.gypfile) problems.push(`${manifest.name} would run node-gyp`)
  if (!manifest.repository || !manifest.repository.url) problems.push(`${manifest.name} has no repository`)
  return problems
}

/** The manifests as the registry serves them and as installed, against what they should say. */
function checkManifests(platform, version, registry, dir, platforms) {
  const served = (name) => registry.packuments.get(name).versions[version]
  const main = served('handover-native')
  const own = served(`handover-native-${platform}`)
  const binary = `handover.${platform}.node`
  const expected = PLATFORMS[platform]
  const problems = [...manifestProblems(main), ...manifestProblems(own)]

  const wantedDeps = Object.fromEntries(platforms.map((p) => [`handover-native-${p}`, version]))
  if (JSON.stringify(main.optionalDependencies) !== JSON.stringify(wantedDeps)) {
    problems.push(`optionalDependencies ${JSON.stringify(main.optionalDependencies)}`)
  }
  if (JSON.stringify(main.files) !== JSON.stringify(readJson(path.join(ROOT, 'package.json')).files)) problems.push('main files differ from the checkout')
  if (JSON.stringify(own.files) !== JSON.stringify([binary]) || own.main !== binary) problems.push(`${own.name} files/main`)
  if (JSON.stringify(own.os) !== JSON.stringify([expected.os]) || JSON.stringify(own.cpu) !== JSON.stringify([expected.cpu])) {
    problems.push(`${own.name} os/cpu ${own.os}/${own.cpu}`)
  }
  if (expected.os === 'linux' && JSON.stringify(own.libc) !== JSON.stringify([expected.libc])) problems.push(`${own.name} libc ${own.libc}`)
  for (const served of [main, own]) if (served.version !== version) problems.push(`${served.name} is ${served.version}`)

  // What the tarballs held, as unpacked by npm.
  const ownDir = path.join(dir, 'node_modules', own.name)
  if (!fs.existsSync(ownDir)) return `FAIL: ${[...problems, `${own.name} not installed`].join('; ')}`
  const installedOwn = listFiles(ownDir)
  if (installedOwn.join() !== ['README.md', binary, 'package.json'].sort().join()) problems.push(`${own.name} holds ${installedOwn.join(', ')}`)
  const installedMain = listFiles(path.join(dir, 'node_modules', 'handover-native'))
  const installedAlias = listFiles(path.join(dir, 'node_modules', 'handover-lib'))
  if (installedMain.some((f) => /\.node$|^src\/|^scripts\/|Cargo\./.test(f))) problems.push('main package holds build files')
  if (installedMain.join() !== installedAlias.join()) problems.push('handover-lib alias differs from handover-native')
  for (const name of ['handover-native', own.name]) {
    const installed = readJson(path.join(dir, 'node_modules', name, 'package.json'))
    problems.push(...manifestProblems(installed).map((p) => `installed ${p}`))
  }
  return problems.length ? `FAIL: ${problems.join('; ')}` : 'ok'
}

/** Loads the addon under both names in a fresh process; ok when both come from the platform package. */
async function checkLoads(platform, dir, env) {
  const probe = `
    const native = require('handover-native')
    const alias = require('handover-lib')
    const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'))
    console.log(JSON.stringify({ native: typeof native.HandoverPeer, alias: typeof alias.HandoverPeer, loaded }))`
  const result = await exec(process.execPath, ['-e', probe], { cwd: dir, env })
  if (result.code !== 0) return `FAIL: ${result.stderr.trim().split('\n')[0]}`
  const { native, alias, loaded } = JSON.parse(result.stdout)
  const expected = path.join(fs.realpathSync(dir), 'node_modules', `handover-native-${platform}`, `handover.${platform}.node`)
  if (native !== 'function' || alias !== 'function') return `FAIL: HandoverPeer is ${native} / ${alias}`
  if (loaded.length !== 1 || loaded[0] !== expected) return `FAIL: loaded ${loaded.join(', ')}`
  return 'ok (both names)'
}

/**
 * A real handover between two processes, both on the installed package: the
 * old one as `handover-native` with options, the young one as `handover-lib`
 * configured by environment variables, multicast pinned to loopback. It runs
 * the project's own pair driver (test-support/pair.js, child.js), copied
 * unchanged into the service folder: there child.js's `require('../index.js')`
 * (its "ours") and `require('handover-lib')` (its "original") both resolve
 * to the installed packages instead of the checkout.
 */
async function checkHandover(dir, env, port, work) {
  const support = path.join(dir, 'test-support')
  fs.mkdirSync(support)
  for (const file of ['pair.js', 'child.js', 'line-process.js']) {
    fs.copyFileSync(path.join(ROOT, 'test-support', file), path.join(support, file))
  }
  fs.writeFileSync(path.join(dir, 'index.js'), "module.exports = require('handover-native')\n")

  const completeFile = path.join(work, 'handover-complete')
  const loopback = { networkMode: 'host', networkInterface: '127.0.0.1', logLevel: 'error' }
  const spec = {
    port,
    old: { impl: 'ours', options: { ...loopback, handoverCompletePath: completeFile } },
    new: {
      impl: 'original',
      env: {
        HANDOVER_NETWORK_MODE: 'host',
        NETWORK_INTERFACE: '127.0.0.1',
        BALENA_SERVICE_HANDOVER_COMPLETE_PATH: path.join(work, 'young-complete'),
      },
    },
    watchMs: 800,
  }
  const result = await exec(process.execPath, [path.join(support, 'pair.js'), JSON.stringify(spec)], { cwd: dir, env })
  const last = result.stdout.trim().split('\n').pop()
  let outcome
  try {
    outcome = JSON.parse(last)
  } catch {
    return `FAIL: pair.js said ${JSON.stringify(last)} ${result.stderr.slice(-300)}`
  }
  if (outcome.error) return `FAIL: ${outcome.error.split('\n')[0]}`
  if (!outcome.oldCallback) return 'FAIL: the old instance never ran its callback'
  if (outcome.newCallback || outcome.oldCallbacks !== 1) return `FAIL: callbacks old ${outcome.oldCallbacks}, new ${outcome.newCallback}`
  if (!fs.existsSync(completeFile)) return 'FAIL: no handover-complete file'
  return `ok (${(outcome.latencyUs / 1000).toFixed(1)} ms)`
}

/** A check's verdict, or FAIL with what threw (a missing package or file). */
function guarded(check) {
  try {
    return check()
  } catch (error) {
    return `FAIL: ${error.message.split('\n')[0]}`
  }
}

/** One table row: every check that can run for `platform` on this machine. */
async function consumerRow(platform, context) {
  const { version, registry, env, work, options, artifacts, host } = context
  const row = { platform, picked: '-', manifest: '-', binary: '-', loads: '-', handover: '-' }
  row.binary = checkBinary(platform, path.join(artifacts, `handover.${platform}.node`))
  const { dir, result } = await installFor(platform, version, env, work)
  if (result.code !== 0) {
    row.picked = `FAIL: npm install exit ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`
    return row
  }
  row.picked = guarded(() => checkPicked(platform, dir))
  row.manifest = guarded(() => checkManifests(platform, version, registry, dir, options.platforms))
  if (platform !== host) {
    const { os: osName, cpu, libc } = PLATFORMS[platform]
    row.loads = row.handover = `n/a (needs ${[osName, cpu, libc].filter(Boolean).join('/')})`
    return row
  }
  row.loads = await checkLoads(platform, dir, env)
  row.handover = row.loads.startsWith('ok') ? await checkHandover(dir, env, options.port, work) : 'n/a (does not load)'
  return row
}

// ----------------------------------------------------------------- table

const COLUMNS = [
  ['platform', 'platform'],
  ['picked', 'package picked'],
  ['manifest', 'manifest'],
  ['binary', 'binary'],
  ['loads', 'loads'],
  ['handover', 'hands over'],
]

function printTable(rows) {
  const widths = COLUMNS.map(([key, title]) => Math.max(title.length, ...rows.map((r) => r[key].length)))
  const line = (cells) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd()
  const out = [line(COLUMNS.map(([, title]) => title)), line(widths.map((w) => '-'.repeat(w)))]
  for (const row of rows) out.push(line(COLUMNS.map(([key]) => row[key])))
  process.stdout.write(out.join('\n') + '\n')
}

const failed = (row) => COLUMNS.some(([key]) => row[key].startsWith('FAIL'))

// ------------------------------------------------------------------ main

async function rehearse(options, work) {
  const version = readJson(path.join(ROOT, 'package.json')).version
  const host = hostPlatform()
  const artifacts = await gatherArtifacts(options, work)
  const registry = await startRegistry({ token: TOKEN })
  try {
    const env = npmEnvironment(registry, work)
    await stageAndPublish(options, artifacts, env, work)
    checkPublishOrder(registry, options.platforms)
    log(`published ${registry.published.length} packages to ${registry.url}, handover-native last`)

    const consumerEnv = withoutRust(env, work)
    await assertNoRust(consumerEnv)
    const context = { version, registry, env: consumerEnv, work, options, artifacts, host }
    const rows = []
    for (const platform of options.platforms) {
      log(`installing as ${platform}`)
      rows.push(await consumerRow(platform, context))
    }
    if (registry.unhandled.length) log(`the registry had no answer for: ${registry.unhandled.join(', ')}`)
    return rows
  } finally {
    await registry.close()
  }
}

async function main() {
  let options
  let work
  try {
    options = parseArgs(process.argv.slice(2))
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-rehearsal-'))
    const rows = await rehearse(options, work)
    printTable(rows)
    const bad = rows.filter(failed)
    if (bad.length) {
      process.stdout.write(`rehearsal FAILED for ${bad.map((r) => r.platform).join(', ')}\n`)
      process.exitCode = 1
    } else {
      process.stdout.write('rehearsal passed\n')
    }
  } catch (error) {
    process.stderr.write(`rehearse: ${error instanceof StepError ? error.message : error.stack}\n`)
    process.stdout.write('rehearsal FAILED before the consumer checks\n')
    process.exitCode = 1
  } finally {
    if (work && options && options.keep) log(`kept ${work}`)
    else if (work) fs.rmSync(work, { recursive: true, force: true })
  }
}

main()
