'use strict'
// The errors of binding.js, required only when no binary loads (or one of
// the wrong version does): kept out of binding.js, so the path every service
// takes compiles less (the require() section of `npm run bench`). Only here
// does the loader look at the machine (the process report, /lib) to say what
// is missing and why.

/**
 * The builds for each `${process.platform}-${process.arch}`, in the order
 * binding.js's loadForPlatform() tries them; the error messages list them
 * from here (__test__/loader.test.js keeps the two in step).
 */
const TARGETS = {
  'linux-x64': ['linux-x64-gnu', 'linux-x64-musl'],
  'linux-arm64': ['linux-arm64-gnu', 'linux-arm64-musl'],
  'linux-arm': ['linux-arm-gnueabihf'],
  'darwin-x64': ['darwin-x64'],
  'darwin-arm64': ['darwin-arm64'],
  'win32-x64': ['win32-x64-msvc'],
}

const PACKAGE = 'handover-native'

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
function notFound({ request, error }) {
  return Boolean(error) && error.code === 'MODULE_NOT_FOUND' && String(error.message).includes(`'${request}'`)
}

/** The first line of an error's message, with the next one when it only introduces it ("node-loader:"). */
function firstLine(error) {
  const lines = String((error && error.message) || error)
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
  if (lines.length > 1 && lines[0].endsWith(':')) return `${lines[0]} ${lines[1]}`
  return lines.length > 0 ? lines[0] : ''
}

function describeAttempt(attempt) {
  const outcome = notFound(attempt) ? 'not found' : `found, but it failed to load: ${firstLine(attempt.error)}`
  return `  ${attempt.request} (${attempt.what}): ${outcome}`
}

/** What to do when a bundle has no binary for this platform. */
function bundlingAdvice(platform, expected) {
  const binary = `handover.${platform}.node`
  return [
    'This looks like a bundle (webpack, ncc, esbuild or the like), and the bundler did not take the binary along:',
    `most bundlers copy a .node file only when told how, and only the one installed where the bundle was built (${expected}).`,
    'What to do (see "Bundling" in the README of handover-native):',
    `  - build the bundle on ${platform} (or where ${expected} is installed), with npm install run without --omit=optional;`,
    '  - webpack: handle .node files with node-loader ({ test: /\\.node$/, loader: "node-loader", options: { name: "[name].[ext]" } });',
    `  - esbuild: --loader:.node=copy --asset-names=[name] (for --format=esm add a banner that defines require with createRequire);`,
    '  - @vercel/ncc: copies the binary by itself; run the bundle from its output folder;',
    `  - ship ${binary} next to the bundle file, or set HANDOVER_NATIVE_LIBRARY_PATH to its path;`,
    `  - or keep the package out of the bundle (webpack externals, esbuild --external:handover-native) and install`,
    `    handover-native (with ${expected}) in the image's node_modules.`,
  ]
}

/**
 * ERR_HANDOVER_NO_BINARY: what was tried (attempts: { request, what, error })
 * and, from the machine, why it is likely missing and what to do. `bundled`:
 * binding.js runs inside a bundle.
 */
function noBinaryError(attempts, { bundled }) {
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
      `to use the prebuilt package ${expected}. A relative path is taken from the working directory (${process.cwd()}).`,
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
    )
    if (bundled) lines.push(...bundlingAdvice(platform, expected))
    lines.push('Likely reasons:')
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
  error.bundled = bundled
  error.attempts = attempts.map((attempt) => ({
    request: attempt.request,
    found: !notFound(attempt),
    message: firstLine(attempt.error),
  }))
  return error
}

/** The platform package is another version than this one. */
function versionError(request, theirs, ours) {
  const error = new Error(
    [
      `handover-native: the prebuilt binary package ${request} is version ${theirs}, but handover-native is ${ours};`,
      'the binary must come from the same release as the JS that loads it.',
      'Likely reasons: a lockfile or an install that pinned the platform package to another version, node_modules',
      'copied from another install, or a bundle built against other versions.',
      'What to do:',
      `  - install the matching version: npm install ${request}@${ours} (or rm -rf node_modules && npm install);`,
      '  - rebuild the bundle, if the service is bundled, after reinstalling.',
    ].join('\n'),
  )
  error.code = 'ERR_HANDOVER_BINARY_VERSION'
  error.package = request
  error.version = theirs
  error.expectedVersion = ours
  return error
}

module.exports = { noBinaryError, versionError }
