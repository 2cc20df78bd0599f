'use strict'
// Loads the native addon. Tried in order: an explicit path
// (HANDOVER_NATIVE_LIBRARY_PATH: our own name, since napi-rs's generic
// NAPI_RS_NATIVE_LIBRARY_PATH is read by every napi-rs addon in the process,
// Jest's module resolver among them), a build in this folder (a git checkout),
// then the prebuilt per-platform package. glibc and musl builds are told
// apart by trying to load them, which costs nothing when the first one
// fits (the generic napi-rs loader reads /usr/bin/ldd on every require).
// Only when nothing loads does it look at the machine more closely, to say
// what is missing and why.

/** The builds for each `${process.platform}-${process.arch}`, in the order they are tried. */
const TARGETS = {
  'linux-x64': ['linux-x64-gnu', 'linux-x64-musl'],
  'linux-arm64': ['linux-arm64-gnu', 'linux-arm64-musl'],
  'linux-arm': ['linux-arm-gnueabihf'],
  'darwin-x64': ['darwin-x64'],
  'darwin-arm64': ['darwin-arm64'],
  'win32-x64': ['win32-x64-msvc'],
}

const PACKAGE = 'handover-native'

function candidates() {
  const explicit = process.env.HANDOVER_NATIVE_LIBRARY_PATH
  if (explicit) return [{ request: explicit, what: 'HANDOVER_NATIVE_LIBRARY_PATH' }]
  const builds = TARGETS[`${process.platform}-${process.arch}`] || []
  const list = []
  for (const build of builds) {
    list.push({ request: `./handover.${build}.node`, what: 'a local build' })
    list.push({ request: `${PACKAGE}-${build}`, what: 'the prebuilt package' })
  }
  return list
}

function load() {
  const attempts = []
  for (const candidate of candidates()) {
    try {
      return require(candidate.request)
    } catch (error) {
      attempts.push({ candidate, error })
    }
  }
  throw noBinaryError(attempts)
}

// ---- Only on the error path from here on. ----

/** 'gnu' or 'musl': the C library this Node runs on (Linux only). */
function linuxLibc() {
  // The report says what this very Node binary is linked against; a glibc
  // system may well have musl's loader installed beside it.
  try {
    const { header } = process.report.getReport()
    return header.glibcVersionRuntime ? 'gnu' : 'musl'
  } catch (error) {
    // No process.report: go by the dynamic loader present.
  }
  try {
    const fs = require('fs')
    return fs.readdirSync('/lib').some((name) => name.startsWith('ld-musl-')) ? 'musl' : 'gnu'
  } catch (error) {
    return 'gnu'
  }
}

/** The build name this machine needs, supported or not: linux-x64-musl, darwin-arm64, freebsd-x64… */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const libc = linuxLibc()
    if (arch === 'arm') return libc === 'musl' ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf'
    return `linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function supportedPlatforms() {
  return Object.keys(TARGETS).reduce((all, key) => all.concat(TARGETS[key]), [])
}

/** True when the request itself was not found (rather than found and failing to load). */
function notFound({ candidate, error }) {
  return error && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(`'${candidate.request}'`)
}

function firstLine(error) {
  return String((error && error.message) || error).split('\n')[0]
}

function describeAttempt(attempt) {
  const { candidate, error } = attempt
  const outcome = notFound(attempt) ? 'not found' : `found, but it failed to load: ${firstLine(error)}`
  return `  ${candidate.request} (${candidate.what}): ${outcome}`
}

function noBinaryError(attempts) {
  const platform = platformName()
  const supported = supportedPlatforms()
  const isSupported = supported.includes(platform)
  const expected = `${PACKAGE}-${platform}`
  const brokenOnes = attempts.filter((attempt) => !notFound(attempt))
  const explicit = process.env.HANDOVER_NATIVE_LIBRARY_PATH
  const lines = []

  if (explicit) {
    lines.push(
      `handover-native: could not load the native binary HANDOVER_NATIVE_LIBRARY_PATH points at (${explicit}).`,
      `Platform: ${platform} (Node ${process.version}).`,
      'Tried:',
      ...attempts.map(describeAttempt),
      'What to do: point HANDOVER_NATIVE_LIBRARY_PATH at a handover .node file built for this platform, or unset it',
      `to use the prebuilt package ${expected}.`,
    )
  } else if (!isSupported) {
    lines.push(
      `handover-native: this platform is not supported: ${platform} (os ${process.platform}, cpu ${process.arch}` +
        `${process.platform === 'linux' ? `, libc ${platform.includes('musl') ? 'musl' : 'glibc'}` : ''}; Node ${process.version}).`,
      `There is no prebuilt package ${expected}.`,
      `Supported platforms: ${supported.join(', ')}.`,
      'What to do: run the service on one of those, or build the addon from a git checkout of handover-native',
      'with `npm run build` (needs Rust, https://rustup.rs), then set HANDOVER_NATIVE_LIBRARY_PATH to the .node file.',
    )
    if (attempts.length > 0) lines.push('Tried:', ...attempts.map(describeAttempt))
  } else {
    const libc = process.platform === 'linux' ? `, libc ${platform.includes('musl') ? 'musl' : 'glibc'}` : ''
    lines.push(
      `handover-native: no native binary could be loaded for ${platform} (os ${process.platform}, cpu ${process.arch}${libc};` +
        ` Node ${process.version}).`,
      `It comes in the package ${expected}, an optional dependency that npm installs only on this platform.`,
      'Tried:',
      ...attempts.map(describeAttempt),
      'Likely reasons:',
    )
    if (brokenOnes.length > 0) {
      lines.push(
        '  - a binary was found but failed to load (see above): a damaged install, one made for another',
        '    platform, or a Node without N-API 6;',
      )
    }
    lines.push(
      '  - optional dependencies were left out: installed with --omit=optional or --no-optional',
      '    (or omit=optional in .npmrc, NPM_CONFIG_OMIT, yarn --ignore-optional);',
      '  - the lockfile was made on another platform (say macOS, or glibc instead of musl) and npm skipped',
      `    ${expected}; or node_modules was copied from another machine or image.`,
      `Supported platforms: ${supported.join(', ')}.`,
      'What to do:',
      '  - reinstall on this platform without omitting optional dependencies: rm -rf node_modules && npm install',
      `    (if the lockfile stays in the way: npm install --save-optional ${expected});`,
      '  - in a git checkout of handover-native: npm run build (needs Rust, https://rustup.rs).',
    )
  }

  const error = new Error(lines.join('\n'))
  error.code = 'ERR_HANDOVER_NO_BINARY'
  error.platform = platform
  error.package = isSupported ? expected : null
  error.supportedPlatforms = supported
  error.attempts = attempts.map(({ candidate, error: cause }) => ({
    request: candidate.request,
    found: !notFound({ candidate, error: cause }),
    message: firstLine(cause),
  }))
  return error
}

module.exports = load()
