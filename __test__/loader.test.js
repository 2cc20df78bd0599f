'use strict'
// binding.js without a binary to load: the error must say which platform
// this is, which package it expected, why it is likely missing, which
// platforms exist and what to do. Each case runs a copy of index.js,
// binding.js and binding-errors.js in a temp folder (no build beside them, no
// node_modules above them), in a child process. No network.

const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')
const SUPPORTED = [
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'linux-arm-gnueabihf',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]

/** This machine's build name, worked out independently of binding.js. */
function thisPlatform() {
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
  if (process.arch === 'arm') return `linux-arm-${glibc ? 'gnueabihf' : 'musleabihf'}`
  return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
}

let dir
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-loader-'))
  for (const file of ['index.js', 'router.js', 'binding.js', 'binding-errors.js']) fs.copyFileSync(path.join(ROOT, file), path.join(dir, file))
})
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

/** The environment without anything that could point the loader at a binary. */
function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra }
  delete env.NODE_PATH
  if (!('HANDOVER_NATIVE_LIBRARY_PATH' in extra)) delete env.HANDOVER_NATIVE_LIBRARY_PATH
  return env
}

/**
 * Requires the copied index.js (or another module of the temp folder) in a
 * child; returns what it threw, or { loaded: true } and what it exports.
 */
function loadFailure({ env = {}, preload = [], cwd = dir, module = 'index.js' } = {}) {
  const script = `
    try {
      const loaded = require(${JSON.stringify(path.join(dir, module))})
      console.log(JSON.stringify({ loaded: true, exports: Object.keys(loaded) }))
    } catch (error) {
      const { message, code, platform, package: pkg, supportedPlatforms, attempts, bundled, version, expectedVersion } = error
      console.log(JSON.stringify({ message, code, platform, pkg, supportedPlatforms, attempts, bundled, version, expectedVersion }))
    }`
  const args = [...preload.flatMap((file) => ['-r', path.join(FIXTURES, file)]), '-e', script]
  const out = execFileSync(process.execPath, args, { cwd, env: cleanEnv(env), encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').pop())
}

/** The addon built in this checkout (npm run build), or null. */
function builtBinary() {
  const file = path.join(ROOT, `handover.${thisPlatform()}.node`)
  return fs.existsSync(file) ? file : null
}

/** A platform package of the given version holding a copy of the built binary, in the temp folder's node_modules. */
function installPlatformPackage(version) {
  const platform = thisPlatform()
  const folder = path.join(dir, 'node_modules', `handover-native-${platform}`)
  fs.mkdirSync(folder, { recursive: true })
  const main = `handover.${platform}.node`
  fs.writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: `handover-native-${platform}`, version, main }))
  fs.copyFileSync(builtBinary(), path.join(folder, main))
  return platform
}

test('on a supported platform: the platform, the package, the reasons, the platforms and the fix', () => {
  if (process.platform !== 'linux') return
  const platform = thisPlatform()
  const failure = loadFailure()
  expect(failure).toMatchObject({
    code: 'ERR_HANDOVER_NO_BINARY',
    platform,
    pkg: `handover-native-${platform}`,
    supportedPlatforms: SUPPORTED,
  })
  const { message } = failure
  const [system, cpu, libc] = platform.split('-')
  expect(message.split('\n')[0]).toContain(platform)
  expect(message).toContain(`os ${system}, cpu ${cpu}, libc ${libc.startsWith('gnu') ? 'glibc' : 'musl'}`)
  expect(message).toContain(`the package handover-native-${platform}`)
  expect(message).toContain(`handover-native-${platform} (the prebuilt package): not found`)
  expect(message).toContain(`./handover.${platform}.node (a local build): not found`)
  // The likely reasons.
  expect(message).toContain('--omit=optional')
  expect(message).toContain('--no-optional')
  expect(message).toMatch(/lockfile was made on another platform/)
  expect(message).toContain(`Supported platforms: ${SUPPORTED.join(', ')}.`)
  // What to do.
  expect(message).toMatch(/reinstall .*without omitting optional dependencies/)
  expect(message).toMatch(/npm run build \(needs Rust/)
})

test('a platform package that is installed but cannot load is told apart from a missing one', () => {
  if (process.platform !== 'linux') return
  const platform = thisPlatform()
  const folder = path.join(dir, 'node_modules', `handover-native-${platform}`)
  fs.mkdirSync(folder, { recursive: true })
  fs.writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: `handover-native-${platform}`, main: 'handover.node' }))
  fs.writeFileSync(path.join(folder, 'handover.node'), 'not a shared object')
  const failure = loadFailure()
  expect(failure.code).toBe('ERR_HANDOVER_NO_BINARY')
  expect(failure.message).toMatch(new RegExp(`handover-native-${platform} \\(the prebuilt package\\): found, but it failed to load: .*handover\\.node`))
  expect(failure.message).toContain('a binary was found but failed to load')
  expect(failure.attempts).toContainEqual(expect.objectContaining({ request: `handover-native-${platform}`, found: true }))
})

test.each([
  ['darwin-arm64', 'darwin-arm64'],
  ['darwin-x64', 'darwin-x64'],
  ['win32-x64', 'win32-x64-msvc'],
])('%s looks for its own package and local build', (fake, platform) => {
  const failure = loadFailure({ env: { FAKE_PLATFORM: fake }, preload: ['fake-platform.js'] })
  expect(failure).toMatchObject({ code: 'ERR_HANDOVER_NO_BINARY', platform, pkg: `handover-native-${platform}` })
  expect(failure.attempts.map((a) => a.request)).toEqual([`./handover.${platform}.node`, `handover-native-${platform}`])
  expect(failure.message).toContain(`(os ${fake.split('-')[0]}, cpu ${fake.split('-')[1]}; Node ${process.version})`)
})

test('an unsupported platform says so and lists the supported ones', () => {
  const failure = loadFailure({ env: { FAKE_PLATFORM: 'freebsd-x64' }, preload: ['fake-platform.js'] })
  expect(failure).toMatchObject({ code: 'ERR_HANDOVER_NO_BINARY', platform: 'freebsd-x64', pkg: null })
  expect(failure.message).toMatch(/^handover-native: this platform is not supported: freebsd-x64/)
  expect(failure.message).toContain('There is no prebuilt package handover-native-freebsd-x64.')
  expect(failure.message).toContain(`Supported platforms: ${SUPPORTED.join(', ')}.`)
})

test('HANDOVER_NATIVE_LIBRARY_PATH that does not load is named', () => {
  const bogus = path.join(dir, 'nothing-here.node')
  const failure = loadFailure({ env: { HANDOVER_NATIVE_LIBRARY_PATH: bogus } })
  expect(failure.code).toBe('ERR_HANDOVER_NO_BINARY')
  expect(failure.message).toContain(`HANDOVER_NATIVE_LIBRARY_PATH points at (${bogus})`)
  expect(failure.attempts).toEqual([expect.objectContaining({ request: bogus, found: false })])
})

test('a load that succeeds reads no process report and lists no folder', () => {
  const result = spawnSync(process.execPath, ['-r', path.join(FIXTURES, 'count-probes.js'), '-e', `require(${JSON.stringify(ROOT)})`], {
    env: cleanEnv(),
    encoding: 'utf8',
  })
  expect(result.status).toBe(0)
  expect(JSON.parse(result.stdout.trim())).toEqual({ getReport: 0, readdirSync: 0 })
})

describe('the platform package must be the same version as handover-native', () => {
  const ours = require('../package.json').version
  beforeEach(() => fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'handover-native', version: ours })))

  test('another version is refused, naming both versions and the fix', () => {
    if (process.platform !== 'linux' || !builtBinary()) return
    const platform = installPlatformPackage('0.0.1-old')
    const failure = loadFailure()
    expect(failure).toMatchObject({
      code: 'ERR_HANDOVER_BINARY_VERSION',
      pkg: `handover-native-${platform}`,
      version: '0.0.1-old',
      expectedVersion: ours,
    })
    expect(failure.message).toContain(`handover-native-${platform} is version 0.0.1-old, but handover-native is ${ours}`)
    expect(failure.message).toContain(`npm install handover-native-${platform}@${ours}`)
  })

  test('the same version loads', () => {
    if (process.platform !== 'linux' || !builtBinary()) return
    installPlatformPackage(ours)
    expect(loadFailure()).toMatchObject({ loaded: true, exports: expect.arrayContaining(['HandoverPeer']) })
  })
})

describe('installed as npm installs it: the platform package beside handover-native in node_modules', () => {
  const ours = require('../package.json').version

  /** node_modules/handover-native (our JS and a package.json of our version) in the temp folder; its folder. */
  function installOurs() {
    const folder = path.join(dir, 'node_modules', 'handover-native')
    fs.mkdirSync(folder, { recursive: true })
    for (const file of ['index.js', 'router.js', 'binding.js', 'binding-errors.js']) fs.copyFileSync(path.join(ROOT, file), path.join(folder, file))
    fs.writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: 'handover-native', version: ours, main: 'index.js' }))
    return folder
  }

  /** Requires the installed package in a child: what loaded (or the error), and every name Node was asked to resolve. */
  function requireInstalled() {
    const script = `
      const Module = require('node:module')
      const resolve = Module._resolveFilename
      const requests = []
      Module._resolveFilename = function (request, ...rest) {
        requests.push(request)
        return resolve.call(this, request, ...rest)
      }
      let result
      try {
        const loaded = require('handover-native')
        const binaries = Object.keys(require.cache).filter((file) => file.endsWith('.node'))
        result = { loaded: true, exports: Object.keys(loaded), binaries }
      } catch (error) {
        result = { code: error.code, message: error.message }
      }
      console.log(JSON.stringify({ ...result, requests }))`
    const out = execFileSync(process.execPath, ['-e', script], { cwd: dir, env: cleanEnv(), encoding: 'utf8' })
    return JSON.parse(out.trim().split('\n').pop())
  }

  test('the binary is taken from the package beside ours by its path, without a search for the package name', () => {
    if (process.platform !== 'linux' || !builtBinary()) return
    installOurs()
    const platform = installPlatformPackage(ours)
    const result = requireInstalled()
    expect(result).toMatchObject({ loaded: true, exports: expect.arrayContaining(['HandoverPeer', 'HandoverRouter']) })
    expect(result.binaries).toEqual([path.join(fs.realpathSync(dir), 'node_modules', `handover-native-${platform}`, `handover.${platform}.node`)])
    expect(result.requests).not.toContain(`handover-native-${platform}`)
  })

  test('a package beside ours of another version is refused, as when found by name', () => {
    if (process.platform !== 'linux' || !builtBinary()) return
    installOurs()
    const platform = installPlatformPackage('0.0.1-old')
    const result = requireInstalled()
    expect(result.code).toBe('ERR_HANDOVER_BINARY_VERSION')
    expect(result.message).toContain(`handover-native-${platform} is version 0.0.1-old, but handover-native is ${ours}`)
  })

  test('one of another version beside ours gives way to the right one Node finds by name (nested in ours)', () => {
    if (process.platform !== 'linux' || !builtBinary()) return
    const folder = installOurs()
    const platform = installPlatformPackage('0.0.1-old')
    const nested = path.join(folder, 'node_modules', `handover-native-${platform}`)
    fs.mkdirSync(nested, { recursive: true })
    fs.writeFileSync(path.join(nested, 'package.json'), JSON.stringify({ name: `handover-native-${platform}`, version: ours, main: `handover.${platform}.node` }))
    fs.copyFileSync(builtBinary(), path.join(nested, `handover.${platform}.node`))
    const result = requireInstalled()
    expect(result).toMatchObject({ loaded: true })
    expect(result.binaries).toEqual([path.join(fs.realpathSync(nested), `handover.${platform}.node`)])
  })
})

describe('a relative HANDOVER_NATIVE_LIBRARY_PATH', () => {
  test('is taken from the working directory, not from the folder of binding.js', () => {
    if (!builtBinary()) return
    const work = path.join(dir, 'work')
    fs.mkdirSync(path.join(work, 'lib'), { recursive: true })
    fs.copyFileSync(builtBinary(), path.join(work, 'lib', 'addon.node'))
    const loaded = loadFailure({ cwd: work, env: { HANDOVER_NATIVE_LIBRARY_PATH: 'lib/addon.node' } })
    expect(loaded).toMatchObject({ loaded: true, exports: expect.arrayContaining(['HandoverPeer']) })
    const dotted = loadFailure({ cwd: work, env: { HANDOVER_NATIVE_LIBRARY_PATH: './lib/addon.node' } })
    expect(dotted).toMatchObject({ loaded: true })
  })

  test('one beside binding.js but not in the working directory is not found, and the error says where it looked', () => {
    if (!builtBinary()) return
    fs.copyFileSync(builtBinary(), path.join(dir, 'addon.node'))
    const work = path.join(dir, 'work')
    fs.mkdirSync(work)
    const failure = loadFailure({ cwd: work, env: { HANDOVER_NATIVE_LIBRARY_PATH: './addon.node' } })
    expect(failure.code).toBe('ERR_HANDOVER_NO_BINARY')
    expect(failure.attempts).toEqual([expect.objectContaining({ request: path.join(work, 'addon.node'), found: false })])
    expect(failure.message).toContain(`taken from the working directory (${work})`)
  })
})

test('binding.js inside a bundle (not named binding.js) says so and how to take the binary along', () => {
  if (process.platform !== 'linux') return
  const platform = thisPlatform()
  fs.mkdirSync(path.join(dir, 'dist'))
  fs.copyFileSync(path.join(ROOT, 'binding.js'), path.join(dir, 'dist', 'main.js'))
  fs.copyFileSync(path.join(ROOT, 'binding-errors.js'), path.join(dir, 'dist', 'binding-errors.js'))
  const failure = loadFailure({ module: 'dist/main.js' })
  expect(failure).toMatchObject({ code: 'ERR_HANDOVER_NO_BINARY', bundled: true })
  expect(failure.message).toMatch(/looks like a bundle/)
  expect(failure.message).toContain('node-loader')
  expect(failure.message).toContain(`handover.${platform}.node next to the bundle`)
  expect(failure.message).toContain('HANDOVER_NATIVE_LIBRARY_PATH')
  expect(failure.message).toMatch(/external/)
  // Not bundled: no such advice.
  expect(loadFailure()).toMatchObject({ code: 'ERR_HANDOVER_NO_BINARY', bundled: false })
})

test('binding.js names every platform binary literally, for bundlers to find: a local build and the package', () => {
  const source = fs.readFileSync(path.join(ROOT, 'binding.js'), 'utf8')
  const literal = (pattern) => [...source.matchAll(pattern)].map((match) => match[1]).sort()
  const platforms = fs.readdirSync(path.join(ROOT, 'npm')).sort()
  expect(literal(/require\('\.\/handover\.([\w-]+)\.node'\)/g)).toEqual(platforms)
  // Tried in the order the errors list the supported platforms (glibc before musl).
  const order = [...source.matchAll(/require\('\.\/handover\.([\w-]+)\.node'\)/g)].map((match) => match[1])
  expect(order).toEqual(SUPPORTED)
  expect(literal(/require\('handover-native-([\w-]+)'\)/g)).toEqual(platforms)
})
