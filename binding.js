'use strict'
// Loads the native addon. Tried in order: an explicit path
// (HANDOVER_NATIVE_LIBRARY_PATH: our own name, since napi-rs's generic
// NAPI_RS_NATIVE_LIBRARY_PATH is read by every napi-rs addon in the process,
// Jest's module resolver among them), a build in this folder (a git checkout),
// then the prebuilt per-platform package. glibc and musl builds are told
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

/**
 * Whether a local build (a git checkout's `npm run build`) is there: a
 * stat, where a require() that fails builds an error with a stack (about
 * 0.4 ms of every require() of an installed package).
 */
function isLocalBuild(file) {
  try {
    return require('fs').statSync(require('path').join(__dirname, file)).isFile()
  } catch (error) {
    return false
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
 * package's, read as files (cheaper than require() of JSON, which Node would
 * set up for this one use); null where they cannot be read, as inside a
 * bundle (there the bundler took both from one node_modules).
 */
function packageVersions(name) {
  if (typeof __webpack_require__ === 'function') {
    return null
  } else {
    try {
      const fs = require('fs')
      const path = require('path')
      const version = (folder) => JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8')).version
      // The package's main is its binary, at its top (npm/*/package.json):
      // the module just loaded says where, without resolving the name again.
      const loaded = module.children.find((child) => child.filename.includes(name))
      const folder = loaded ? path.dirname(loaded.filename) : path.dirname(require.resolve(name))
      return { ours: version(__dirname), theirs: version(folder) }
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
  const request = require('path').resolve(explicit)
  try {
    return requireAtRunTime(request)
  } catch (error) {
    attempts.push({ request, what: 'HANDOVER_NATIVE_LIBRARY_PATH', error })
    return MISSED
  }
}

// Each require() sits in a try block of its own: bundlers treat a module
// they cannot find there as optional (only the binaries of the platform that
// built the bundle exist there) rather than failing the build.
function loadForPlatform() {
  const { platform, arch } = process
  if (platform === 'linux' && arch === 'x64') {
    if (isLocalBuild('handover.linux-x64-gnu.node')) {
      try {
        return require('./handover.linux-x64-gnu.node')
      } catch (error) {
        missed('./handover.linux-x64-gnu.node', error)
      }
    } else {
      missed('./handover.linux-x64-gnu.node', absent('./handover.linux-x64-gnu.node'))
    }
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
    try {
      return prebuilt(require('handover-native-linux-x64-musl'), 'handover-native-linux-x64-musl')
    } catch (error) {
      missed('handover-native-linux-x64-musl', error)
    }
  } else if (platform === 'linux' && arch === 'arm64') {
    if (isLocalBuild('handover.linux-arm64-gnu.node')) {
      try {
        return require('./handover.linux-arm64-gnu.node')
      } catch (error) {
        missed('./handover.linux-arm64-gnu.node', error)
      }
    } else {
      missed('./handover.linux-arm64-gnu.node', absent('./handover.linux-arm64-gnu.node'))
    }
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
    try {
      return prebuilt(require('handover-native-linux-arm64-musl'), 'handover-native-linux-arm64-musl')
    } catch (error) {
      missed('handover-native-linux-arm64-musl', error)
    }
  } else if (platform === 'linux' && arch === 'arm') {
    if (isLocalBuild('handover.linux-arm-gnueabihf.node')) {
      try {
        return require('./handover.linux-arm-gnueabihf.node')
      } catch (error) {
        missed('./handover.linux-arm-gnueabihf.node', error)
      }
    } else {
      missed('./handover.linux-arm-gnueabihf.node', absent('./handover.linux-arm-gnueabihf.node'))
    }
    try {
      return prebuilt(require('handover-native-linux-arm-gnueabihf'), 'handover-native-linux-arm-gnueabihf')
    } catch (error) {
      missed('handover-native-linux-arm-gnueabihf', error)
    }
  } else if (platform === 'darwin' && arch === 'x64') {
    if (isLocalBuild('handover.darwin-x64.node')) {
      try {
        return require('./handover.darwin-x64.node')
      } catch (error) {
        missed('./handover.darwin-x64.node', error)
      }
    } else {
      missed('./handover.darwin-x64.node', absent('./handover.darwin-x64.node'))
    }
    try {
      return prebuilt(require('handover-native-darwin-x64'), 'handover-native-darwin-x64')
    } catch (error) {
      missed('handover-native-darwin-x64', error)
    }
  } else if (platform === 'darwin' && arch === 'arm64') {
    if (isLocalBuild('handover.darwin-arm64.node')) {
      try {
        return require('./handover.darwin-arm64.node')
      } catch (error) {
        missed('./handover.darwin-arm64.node', error)
      }
    } else {
      missed('./handover.darwin-arm64.node', absent('./handover.darwin-arm64.node'))
    }
    try {
      return prebuilt(require('handover-native-darwin-arm64'), 'handover-native-darwin-arm64')
    } catch (error) {
      missed('handover-native-darwin-arm64', error)
    }
  } else if (platform === 'win32' && arch === 'x64') {
    if (isLocalBuild('handover.win32-x64-msvc.node')) {
      try {
        return require('./handover.win32-x64-msvc.node')
      } catch (error) {
        missed('./handover.win32-x64-msvc.node', error)
      }
    } else {
      missed('./handover.win32-x64-msvc.node', absent('./handover.win32-x64-msvc.node'))
    }
    try {
      return prebuilt(require('handover-native-win32-x64-msvc'), 'handover-native-win32-x64-msvc')
    } catch (error) {
      missed('handover-native-win32-x64-msvc', error)
    }
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
  return typeof __filename !== 'string' || !/[\\/]binding\.js$/.test(__filename)
}

function load() {
  const explicit = process.env.HANDOVER_NATIVE_LIBRARY_PATH
  const binding = explicit ? loadExplicit(explicit) : loadForPlatform()
  if (binding === MISSED) throw require('./binding-errors.js').noBinaryError(attempts, { bundled: looksBundled() })
  return binding
}

module.exports = load()

