'use strict'
// Builds the floor addon (benchmark/floor/, a crate of its own) with cargo
// and copies the library to benchmark/floor/floor.node, where
// workers/impl.js loads it. Nothing is rebuilt while floor.node is newer
// than every source file of the crate; cargo itself then has nothing to do
// either, but is not even started.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const CRATE = path.join(__dirname, '..', 'floor')
const ADDON = path.join(CRATE, 'floor.node')
// Its own target folder, whatever CARGO_TARGET_DIR says, so the library is found.
const TARGET = path.join(CRATE, 'target')
const LIBRARY = {
  linux: 'libhandover_floor.so',
  darwin: 'libhandover_floor.dylib',
  win32: 'handover_floor.dll',
}[process.platform]
const BUILD_TIMEOUT_MS = 600_000

/** Every file cargo builds the floor from. */
function sources() {
  const top = ['Cargo.toml', 'Cargo.lock', 'build.rs'].map((f) => path.join(CRATE, f))
  const src = fs.readdirSync(path.join(CRATE, 'src')).map((f) => path.join(CRATE, 'src', f))
  return [...top, ...src].filter((f) => fs.existsSync(f))
}

function upToDate() {
  if (!fs.existsSync(ADDON)) return false
  const built = fs.statSync(ADDON).mtimeMs
  return sources().every((f) => fs.statSync(f).mtimeMs <= built)
}

/**
 * { addon } once floor.node is built and current, or { skipped: why } when
 * there is no cargo to build it. A failed build throws: that is a broken
 * benchmark, not a missing tool.
 */
function prepareFloor(progress) {
  if (upToDate()) return { addon: ADDON }
  if (!LIBRARY) return { skipped: `no floor build for ${process.platform}` }
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { skipped: 'cargo is not installed, so the floor addon (benchmark/floor/) cannot be built' }
  }
  progress('latency: building the floor addon (cargo build --release, about 30 s the first time)')
  const manifest = path.join(CRATE, 'Cargo.toml')
  const build = spawnSync(
    'cargo',
    ['build', '--release', '--quiet', '--manifest-path', manifest, '--target-dir', TARGET],
    { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: BUILD_TIMEOUT_MS },
  )
  if (build.status !== 0) {
    const said = (build.stderr || '').trim().split('\n').slice(-20).join('\n')
    const how = build.error ? build.error.message : `exit ${build.status}`
    throw new Error(`cannot build the floor addon (${how}):\n${said}`)
  }
  // Copied through a temporary name, so a worker never loads a half-written file.
  const partial = path.join(CRATE, '.partial.node')
  fs.copyFileSync(path.join(TARGET, 'release', LIBRARY), partial)
  fs.renameSync(partial, ADDON)
  return { addon: ADDON }
}

module.exports = { prepareFloor, FLOOR_ADDON: ADDON }
