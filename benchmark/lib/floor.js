'use strict'
// Builds the yardstick addons of the benchmark, each a crate of its own,
// with cargo, and copies each library next to its crate as a .node file:
// - the floor (benchmark/floor/ → floor.node), where workers/impl.js loads it;
// - the minimal napi-rs addon (benchmark/minimal/ → minimal.node: one
//   exported function), for the require() section.
// Nothing is rebuilt while the .node file is newer than every source file of
// its crate; cargo itself then has nothing to do either, but is not even
// started.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const BENCHMARK = path.join(__dirname, '..')
// One target folder for both, whatever CARGO_TARGET_DIR says (so the library
// is found), so that napi-rs is compiled once for the two.
const TARGET = path.join(BENCHMARK, 'floor', 'target')
const BUILD_TIMEOUT_MS = 600_000

const CRATES = {
  floor: { dir: path.join(BENCHMARK, 'floor'), lib: 'handover_floor', addon: 'floor.node', took: 'about 30 s the first time' },
  minimal: { dir: path.join(BENCHMARK, 'minimal'), lib: 'handover_minimal', addon: 'minimal.node', took: 'about 10 s after the floor' },
}

/** The file name cargo gives the crate's library on this OS, or null. */
function libraryFile(lib) {
  const names = { linux: `lib${lib}.so`, darwin: `lib${lib}.dylib`, win32: `${lib}.dll` }
  return names[process.platform] || null
}

/** Every file cargo builds a crate from. */
function sources(dir) {
  const top = ['Cargo.toml', 'Cargo.lock', 'build.rs'].map((f) => path.join(dir, f))
  const src = fs.readdirSync(path.join(dir, 'src')).map((f) => path.join(dir, 'src', f))
  return [...top, ...src].filter((f) => fs.existsSync(f))
}

function upToDate(dir, addon) {
  if (!fs.existsSync(addon)) return false
  const built = fs.statSync(addon).mtimeMs
  return sources(dir).every((f) => fs.statSync(f).mtimeMs <= built)
}

/**
 * { addon } once the crate's .node file is built and current, or
 * { skipped: why } when there is no cargo to build it. A failed build
 * throws: that is a broken benchmark, not a missing tool.
 */
function prepareAddon(name, progress, section) {
  const crate = CRATES[name]
  const addon = path.join(crate.dir, crate.addon)
  if (upToDate(crate.dir, addon)) return { addon }
  const library = libraryFile(crate.lib)
  if (!library) return { skipped: `no ${name} addon build for ${process.platform}` }
  if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return { skipped: `cargo is not installed, so the ${name} addon (benchmark/${name}/) cannot be built` }
  }
  progress(`${section}: building the ${name} addon (cargo build --release, ${crate.took})`)
  const manifest = path.join(crate.dir, 'Cargo.toml')
  const build = spawnSync(
    'cargo',
    ['build', '--release', '--quiet', '--manifest-path', manifest, '--target-dir', TARGET],
    { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: BUILD_TIMEOUT_MS },
  )
  if (build.status !== 0) {
    const said = (build.stderr || '').trim().split('\n').slice(-20).join('\n')
    const how = build.error ? build.error.message : `exit ${build.status}`
    throw new Error(`cannot build the ${name} addon (${how}):\n${said}`)
  }
  // Copied through a temporary name, so a worker never loads a half-written file.
  const partial = path.join(crate.dir, '.partial.node')
  fs.copyFileSync(path.join(TARGET, 'release', library), partial)
  fs.renameSync(partial, addon)
  return { addon }
}

/** The floor addon of the latency section. */
function prepareFloor(progress, section = 'latency') {
  return prepareAddon('floor', progress, section)
}

/** The minimal napi-rs addon (one exported function) of the require() section. */
function prepareMinimal(progress, section = 'require') {
  return prepareAddon('minimal', progress, section)
}

module.exports = { prepareFloor, prepareMinimal, FLOOR_ADDON: path.join(CRATES.floor.dir, CRATES.floor.addon) }
