#!/usr/bin/env node
'use strict'
// Builds the addon for every platform a release ships and does with each
// build what this machine can: run it natively (x64), under qemu-user with a
// Node from the npm registry (arm64, armv7), or inspect the binary (musl,
// macOS, Windows). Prints a table: platform → built / loads / hands over /
// tests. A step that could not run says n/a and why; it never shows as passed.
//
//   npm run cross                          every platform: build, inspect, run
//   npm run cross -- --targets linux-arm64-gnu,darwin-arm64
//   npm run cross -- --skip-build          use what is in artifacts/
//   node scripts/cross.js build --target linux-x64-gnu   build only (release workflow)
//
// Binaries go to artifacts/handover.<platform>.node.

const fs = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')
const { TARGETS, GLIBC_FLOOR, findTarget } = require('./cross/targets')
const toolchain = require('./cross/toolchain')
const { inspect } = require('./cross/inspect')
const emulate = require('./cross/emulate')

const ARTIFACTS = path.join(toolchain.ROOT, 'artifacts')
const OUTPUT_FILE = { elf: 'libhandover.so', macho: 'libhandover.dylib', pe: 'handover.dll' }

const artifactPath = (target) => path.join(ARTIFACTS, `handover.${target.platform}.node`)

function cargoEnv(target) {
  const env = { ...process.env }
  if (target.rustflags) env[`CARGO_TARGET_${target.rustTarget.toUpperCase().replace(/-/g, '_')}_RUSTFLAGS`] = target.rustflags
  return env
}

/** Builds one target with cargo-zigbuild (cargo and rust-lld for Windows) and copies it to artifacts/. */
async function build(target) {
  toolchain.ensureRustTargets([target.rustTarget])
  // zig links the Unix targets and makes the Windows import libraries.
  const zigbuild = toolchain.ensureZig()
  let command
  let env = cargoEnv(target)
  if (target.format.kind === 'pe') {
    const { prepareWindowsMsvc } = require('./cross/windows-msvc')
    const prepared = await prepareWindowsMsvc({ cacheDir: path.join(toolchain.CACHE, 'windows-msvc') })
    command = ['cargo', 'build', '--release', '--target', target.rustTarget]
    env = { ...env, ...prepared.env }
  } else {
    command = [zigbuild, 'zigbuild', '--release', '--target', target.buildTarget]
  }
  process.stderr.write(`building ${target.platform}: ${command.join(' ')}\n`)
  toolchain.run(command[0], command.slice(1), { cwd: toolchain.ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] })
  const built = path.join(toolchain.ROOT, 'target', target.rustTarget, 'release', OUTPUT_FILE[target.format.kind])
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  fs.copyFileSync(built, artifactPath(target))
  return artifactPath(target)
}

/** One row of the table: each step's state and note. */
async function check(target, { skipBuild, tools }) {
  const row = { platform: target.platform, notes: [] }
  const step = (name, outcome) => {
    row[name] = outcome
    if (outcome.note) row.notes.push(`${name}: ${outcome.note}`)
  }
  try {
    if (skipBuild && !fs.existsSync(artifactPath(target))) throw new Error(`--skip-build, and ${artifactPath(target)} is missing`)
    if (!skipBuild) await build(target)
    const inspected = inspect(tools, artifactPath(target), target, GLIBC_FLOOR)
    step('built', inspected.ok ? emulate.pass(inspected.summary) : emulate.fail(inspected.problems.join('; ')))
  } catch (error) {
    step('built', emulate.fail(String(error.message).split('\n').slice(0, 4).join(' | ')))
  }
  const blocked = row.built.state !== 'pass' ? 'not built' : runBlocker(target)
  if (blocked) {
    for (const name of ['loads', 'handsOver', 'tests']) step(name, emulate.notRun(name === 'loads' ? blocked : ''))
    return row
  }
  let foreignNode = null
  if (target.run === 'qemu') {
    foreignNode = toolchain.ensureNode(target.qemu.node)
    toolchain.ensureJestResolver(target.platform)
  }
  const outcomes = await emulate.runAll(target, artifactPath(target), foreignNode)
  for (const [name, outcome] of Object.entries(outcomes)) step(name, outcome)
  return row
}

/** Why a target cannot run here, or null; installs qemu and the foreign libraries when it can. */
function runBlocker(target) {
  if (target.run === 'inspect') return `inspected only: ${target.why}`
  if (target.run === 'qemu') return toolchain.ensureDebianPackages(['qemu-user-static', ...target.qemu.apt])
  return null
}

const MARK = { pass: 'yes', fail: 'FAIL', 'n/a': 'n/a' }

function printTable(rows) {
  const header = ['platform', 'built', 'loads', 'hands over', 'tests']
  const cells = rows.map((r) => [r.platform, ...['built', 'loads', 'handsOver', 'tests'].map((k) => MARK[r[k].state])])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)))
  const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join(' | ')
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line), '']
  for (const row of rows) for (const note of row.notes) out.push(`${row.platform}: ${note}`)
  process.stdout.write(out.join('\n') + '\n')
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      targets: { type: 'string' },
      target: { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
    },
  })
  const chosen = values.targets || values.target
  const targets = chosen ? chosen.split(',').map(findTarget) : TARGETS
  if (positionals[0] === 'build') {
    for (const target of targets) process.stdout.write(`${await build(target)}\n`)
    return
  }
  if (positionals.length) throw new Error(`unknown command ${positionals[0]}; see the comment at the top of scripts/cross.js`)
  const tools = toolchain.llvmTools()
  const rows = []
  for (const target of targets) rows.push(await check(target, { skipBuild: values['skip-build'], tools }))
  printTable(rows)
  if (rows.some((r) => ['built', 'loads', 'handsOver', 'tests'].some((k) => r[k].state === 'fail'))) process.exitCode = 1
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`)
  process.exit(1)
})
