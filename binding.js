'use strict'
// Loads the native addon. Tried in order: an explicit path
// (HANDOVER_NATIVE_LIBRARY_PATH: our own name, since napi-rs's generic
// NAPI_RS_NATIVE_LIBRARY_PATH is read by every napi-rs addon in the process,
// Jest's module resolver among them), a build in this folder (a git checkout),
// then the prebuilt per-platform package: first in the folder beside this
// one, where npm installs it, then by name, wherever Node finds it. glibc and musl builds are told
// apart by trying to load them, which costs nothing when the first one
// fits (the generic napi-rs loader reads /usr/bin/ldd on every require).
// Only when nothing loads does it look at the machine more closely, to say
// what is missing and why (binding-errors.js, loaded only then).
//
// Every require() of a binary is written out literally, one per platform, as
// napi-rs's generated loaders do: bundlers (webpack with node-loader, ncc,
// esbuild) only see, and copy, what they can read here. See "Bundling" in
// README.md.

/** What was tried and why it did not load: { request, what, error }. */
const attempts = []
/** What the loaders return when nothing loaded. */
const MISSED = undefined

/** Notes a request that did not load; a binary of the wrong version stops the search. */
function missed(request, error) {
  if (error && error.code === 'ERR_HANDOVER_BINARY_VERSION') throw error
  attempts.push({ request, what: request.startsWith('./') ? 'a local build' : 'the prebuilt package', error })
}

const fs = require('fs')
const path = require('path')

/**
 * Whether a local build (a git checkout's `npm run build`) is there: a
 * stat that throws nothing when the file is missing, where a require() that
 * fails builds an error with a stack (about 0.4 ms of every require() of an
 * installed package).
 */
function isLocalBuild(file) {
  try {
    const stats = fs.statSync(path.join(__dirname, file), { throwIfNoEntry: false })
    return stats !== undefined && stats.isFile()
  } catch (error) {
    // No __dirname: an ES module bundle.
    return false
  }
}

/**
 * The `name` and `version` of the package.json in `folder`, read as a file
 * (cheaper than require() of JSON, which Node would set up for this one
 * use), or null when it cannot be read.
 */
function manifest(folder) {
  try {
    const { name, version } = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'))
    return { name, version }
  } catch (error) {
    return null
  }
}

let ours
/** This package's manifest, read once whichever platform packages are tried. */
function ownManifest() {
  if (ours === undefined) ours = manifest(__dirname)
  return ours
}

/**
 * The binary of the platform package `name`, taken from where npm and pnpm
 * install it, beside this package's folder (node_modules/handover-native-*
 * next to node_modules/handover-native): two package.json files read and
 * the binary required by its path. This spares the require() of the
 * package name Node's search for it (node_modules folders walked, the
 * package's package.json parsed, its main resolved): about half a
 * millisecond of every require() of an installed package. MISSED,
 * silently, whenever that is not a package of our version there that loads
 * (a bundle, another layout, another version, a damaged binary): the
 * require() of the package name that follows then searches, and reports,
 * as before.
 */
function besideUs(name, file) {
  if (looksBundled()) return MISSED
  const folder = path.join(__dirname, '..', name)
  const theirs = manifest(folder)
  if (theirs === null || theirs.name !== name) return MISSED
  const own = ownManifest()
  if (own === null || theirs.version !== own.version) return MISSED
  try {
    return requireAtRunTime(path.join(folder, file))
  } catch (error) {
    return MISSED
  }
}

/** What require() would have thrown for a file that is not there. */
function absent(request) {
  return { code: 'MODULE_NOT_FOUND', message: `Cannot find module '${request}'` }
}

/** The binary of a prebuilt package, once its package.json says it is this package's version. */
function prebuilt(binding, name) {
  const versions = packageVersions(name)
  if (versions !== null && versions.theirs !== versions.ours) {
    throw require('./binding-errors.js').versionError(name, versions.theirs, versions.ours)
  }
  return binding
}

/**
 * { ours, theirs }: the versions in our package.json and in the platform
 * package's; null where they cannot be read, as inside a bundle (there the
 * bundler took both from one node_modules).
 */
function packageVersions(name) {
  if (typeof __webpack_require__ === 'function') {
    return null
  } else {
    try {
      // The package's main is its binary, at its top (npm/*/package.json):
      // the module just loaded says where, without resolving the name again.
      const loaded = module.children.find((child) => child.filename.includes(name))
      const theirs = manifest(loaded ? path.dirname(loaded.filename) : path.dirname(require.resolve(name)))
      const own = ownManifest()
      return own && theirs ? { ours: own.version, theirs: theirs.version } : null
    } catch (error) {
      return null
    }
  }
}

/** require() that bundlers leave alone, for a path known only at run time. */
function requireAtRunTime(request) {
  // webpack (and ncc, built on it) replaces `require` with its own, which
  // only knows the modules of the bundle; __non_webpack_require__ is Node's.
  // webpack reads this condition as true and skips the other branch, so it
  // does not warn about a require of an expression.
  if (typeof __webpack_require__ === 'function') {
    return __non_webpack_require__(request)
  } else {
    return require(request)
  }
}

function loadExplicit(explicit) {
  // Relative to the working directory, as any path in the environment is.
  const request = path.resolve(explicit)
  try {
    return requireAtRunTime(request)
  } catch (error) {
    attempts.push({ request, what: 'HANDOVER_NATIVE_LIBRARY_PATH', error })
    return MISSED
  }
}

// Each require() sits in a try block of its own: bundlers treat a module
// they cannot find there as optional (only the binaries of the platform that
// built the bundle exist there) rather than failing the build. One function
// per platform, so that V8 compiles only the one that runs.
function loadForPlatform() {
  const { platform, arch } = process
  if (platform === 'linux' && arch === 'x64') return linuxX64()
  else if (platform === 'linux' && arch === 'arm64') return linuxArm64()
  else if (platform === 'linux' && arch === 'arm') return linuxArm()
  else if (platform === 'darwin' && arch === 'x64') return darwinX64()
  else if (platform === 'darwin' && arch === 'arm64') return darwinArm64()
  else if (platform === 'win32' && arch === 'x64') return win32X64()
  return MISSED
}

function linuxX64() {
  if (isLocalBuild('handover.linux-x64-gnu.node')) {
    try {
      return require('./handover.linux-x64-gnu.node')
    } catch (error) {
      missed('./handover.linux-x64-gnu.node', error)
    }
  } else {
    missed('./handover.linux-x64-gnu.node', absent('./handover.linux-x64-gnu.node'))
  }
  let beside = besideUs('handover-native-linux-x64-gnu', 'handover.linux-x64-gnu.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-linux-x64-gnu'), 'handover-native-linux-x64-gnu')
  } catch (error) {
    missed('handover-native-linux-x64-gnu', error)
  }
  if (isLocalBuild('handover.linux-x64-musl.node')) {
    try {
      return require('./handover.linux-x64-musl.node')
    } catch (error) {
      missed('./handover.linux-x64-musl.node', error)
    }
  } else {
    missed('./handover.linux-x64-musl.node', absent('./handover.linux-x64-musl.node'))
  }
  beside = besideUs('handover-native-linux-x64-musl', 'handover.linux-x64-musl.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-linux-x64-musl'), 'handover-native-linux-x64-musl')
  } catch (error) {
    missed('handover-native-linux-x64-musl', error)
  }
  return MISSED
}

function linuxArm64() {
  if (isLocalBuild('handover.linux-arm64-gnu.node')) {
    try {
      return require('./handover.linux-arm64-gnu.node')
    } catch (error) {
      missed('./handover.linux-arm64-gnu.node', error)
    }
  } else {
    missed('./handover.linux-arm64-gnu.node', absent('./handover.linux-arm64-gnu.node'))
  }
  let beside = besideUs('handover-native-linux-arm64-gnu', 'handover.linux-arm64-gnu.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-linux-arm64-gnu'), 'handover-native-linux-arm64-gnu')
  } catch (error) {
    missed('handover-native-linux-arm64-gnu', error)
  }
  if (isLocalBuild('handover.linux-arm64-musl.node')) {
    try {
      return require('./handover.linux-arm64-musl.node')
    } catch (error) {
      missed('./handover.linux-arm64-musl.node', error)
    }
  } else {
    missed('./handover.linux-arm64-musl.node', absent('./handover.linux-arm64-musl.node'))
  }
  beside = besideUs('handover-native-linux-arm64-musl', 'handover.linux-arm64-musl.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-linux-arm64-musl'), 'handover-native-linux-arm64-musl')
  } catch (error) {
    missed('handover-native-linux-arm64-musl', error)
  }
  return MISSED
}

function linuxArm() {
  if (isLocalBuild('handover.linux-arm-gnueabihf.node')) {
    try {
      return require('./handover.linux-arm-gnueabihf.node')
    } catch (error) {
      missed('./handover.linux-arm-gnueabihf.node', error)
    }
  } else {
    missed('./handover.linux-arm-gnueabihf.node', absent('./handover.linux-arm-gnueabihf.node'))
  }
  const beside = besideUs('handover-native-linux-arm-gnueabihf', 'handover.linux-arm-gnueabihf.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-linux-arm-gnueabihf'), 'handover-native-linux-arm-gnueabihf')
  } catch (error) {
    missed('handover-native-linux-arm-gnueabihf', error)
  }
  return MISSED
}

function darwinX64() {
  if (isLocalBuild('handover.darwin-x64.node')) {
    try {
      return require('./handover.darwin-x64.node')
    } catch (error) {
      missed('./handover.darwin-x64.node', error)
    }
  } else {
    missed('./handover.darwin-x64.node', absent('./handover.darwin-x64.node'))
  }
  const beside = besideUs('handover-native-darwin-x64', 'handover.darwin-x64.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-darwin-x64'), 'handover-native-darwin-x64')
  } catch (error) {
    missed('handover-native-darwin-x64', error)
  }
  return MISSED
}

function darwinArm64() {
  if (isLocalBuild('handover.darwin-arm64.node')) {
    try {
      return require('./handover.darwin-arm64.node')
    } catch (error) {
      missed('./handover.darwin-arm64.node', error)
    }
  } else {
    missed('./handover.darwin-arm64.node', absent('./handover.darwin-arm64.node'))
  }
  const beside = besideUs('handover-native-darwin-arm64', 'handover.darwin-arm64.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-darwin-arm64'), 'handover-native-darwin-arm64')
  } catch (error) {
    missed('handover-native-darwin-arm64', error)
  }
  return MISSED
}

function win32X64() {
  if (isLocalBuild('handover.win32-x64-msvc.node')) {
    try {
      return require('./handover.win32-x64-msvc.node')
    } catch (error) {
      missed('./handover.win32-x64-msvc.node', error)
    }
  } else {
    missed('./handover.win32-x64-msvc.node', absent('./handover.win32-x64-msvc.node'))
  }
  const beside = besideUs('handover-native-win32-x64-msvc', 'handover.win32-x64-msvc.node')
  if (beside !== MISSED) return beside
  try {
    return prebuilt(require('handover-native-win32-x64-msvc'), 'handover-native-win32-x64-msvc')
  } catch (error) {
    missed('handover-native-win32-x64-msvc', error)
  }
  return MISSED
}

/**
 * Whether this file runs inside a bundle (webpack, ncc, esbuild, rollup…)
 * rather than as node_modules/handover-native/binding.js: webpack defines
 * its own require; the others leave a __filename that is the bundle's (or,
 * in an ES module, none).
 */
function looksBundled() {
  if (typeof __webpack_require__ === 'function') return true
  return typeof __filename !== 'string' || !(__filename.endsWith('/binding.js') || __filename.endsWith('\\binding.js'))
}

function load() {
  const explicit = process.env.HANDOVER_NATIVE_LIBRARY_PATH
  const binding = explicit ? loadExplicit(explicit) : loadForPlatform()
  if (binding === MISSED) throw require('./binding-errors.js').noBinaryError(attempts, { bundled: looksBundled() })
  return binding
}

module.exports = load()

