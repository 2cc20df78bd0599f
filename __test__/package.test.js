'use strict'
// What `npm publish` would ship: the loader, the types, the CLI and the docs;
// no Rust sources, tests, benchmarks or build output. The checkout keeps its
// `prepare` script (a clone builds from source); the release is published
// from a staged copy (scripts/stage-release.js) whose manifest has none.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

const PLATFORMS = {
  'linux-x64-gnu': { triple: 'x86_64-unknown-linux-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-arm64-gnu': { triple: 'aarch64-unknown-linux-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'linux-arm-gnueabihf': { triple: 'armv7-unknown-linux-gnueabihf', os: 'linux', cpu: 'arm', libc: 'glibc' },
  'linux-x64-musl': { triple: 'x86_64-unknown-linux-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'linux-arm64-musl': { triple: 'aarch64-unknown-linux-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
  'darwin-x64': { triple: 'x86_64-apple-darwin', os: 'darwin', cpu: 'x64' },
  'darwin-arm64': { triple: 'aarch64-apple-darwin', os: 'darwin', cpu: 'arm64' },
  'win32-x64-msvc': { triple: 'x86_64-pc-windows-msvc', os: 'win32', cpu: 'x64' },
}
const REPOSITORY = { type: 'git', url: 'git+https://github.com/balena-io-experimental/handover-native.git' }
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare']

function packedFiles(dir) {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' })
  return JSON.parse(out)[0].files.map((f) => f.path)
}

function expectOnlyShippedFiles(files) {
  for (const wanted of ['index.js', 'router.js', 'adapters/index.js', 'index.d.ts', 'binding.js', 'binding-errors.js', 'binding.d.ts', 'cli/handover.js', 'README.md', 'package.json']) {
    expect(files).toContain(wanted)
  }
  const unwanted = files.filter((f) =>
    /^(src|__test__|test-support|benchmark|examples|target|npm|scripts|node_modules|artifacts)\/|\.node$|\.rs$|Cargo\.|\.test\.js$/.test(f),
  )
  expect(unwanted).toEqual([])
}

test('the tarball holds the loader, the types, the CLI and the README, and nothing else', () => {
  expectOnlyShippedFiles(packedFiles(ROOT))
})

test('the package declares the CLI, its repository and a prebuilt binary package for each platform', () => {
  const pkg = require('../package.json')
  expect(pkg.bin).toEqual({ handover: 'cli/handover.js' })
  expect(pkg.repository).toEqual(REPOSITORY)
  expect(pkg.napi.binaryName).toBe('handover')
  expect([...pkg.napi.targets].sort()).toEqual(Object.values(PLATFORMS).map((p) => p.triple).sort())
  // Every target has a package folder, and there is no folder without a target.
  expect(fs.readdirSync(path.join(ROOT, 'npm')).sort()).toEqual(Object.keys(PLATFORMS).sort())
})

test.each(Object.entries(PLATFORMS))('npm/%s says which systems it is for and has no install step', (abi, expected) => {
  const platform = require(`../npm/${abi}/package.json`)
  expect(platform.name).toBe(`handover-native-${abi}`)
  expect(platform.version).toBe(require('../package.json').version)
  // npm checks engines on every package it installs: the same range as the main one.
  expect(platform.engines).toEqual(require('../package.json').engines)
  expect(platform.main).toBe(`handover.${abi}.node`)
  expect(platform.files).toEqual([`handover.${abi}.node`])
  expect(platform.os).toEqual([expected.os])
  expect(platform.cpu).toEqual([expected.cpu])
  // Without libc, npm would install a glibc build on Alpine (and the reverse).
  if (expected.os === 'linux') expect(platform.libc).toEqual([expected.libc])
  else expect(platform.libc).toBeUndefined()
  // npm provenance is refused for a package that does not name its repository.
  expect(platform.repository).toEqual(REPOSITORY)
  expect(platform.scripts).toBeUndefined()
  expect(fs.readFileSync(path.join(ROOT, 'npm', abi, 'README.md'), 'utf8')).toContain(expected.triple)
})

test('a clone builds from source: the checkout keeps its prepare script', () => {
  expect(require('../package.json').scripts.prepare).toBe('node scripts/prepare.js')
})

describe('the staged release (what is published)', () => {
  let work
  let staged

  beforeAll(() => {
    // Staging copies binaries without looking into them: placeholders do.
    work = tempDir('handover-stage-test-')
    const artifacts = path.join(work, 'artifacts')
    fs.mkdirSync(artifacts)
    for (const abi of Object.keys(PLATFORMS)) fs.writeFileSync(path.join(artifacts, `handover.${abi}.node`), abi)
    staged = path.join(work, 'staged')
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'stage-release.js'), 'stage', '--out', staged, '--artifacts', artifacts], {
      stdio: 'pipe',
    })
  })

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }))

  test('the main manifest has no scripts (so nothing builds at install time) and no dev tooling', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(staged, 'package.json'), 'utf8'))
    const checkout = require('../package.json')
    expect(manifest.scripts).toBeUndefined()
    expect(manifest.devDependencies).toBeUndefined()
    expect(manifest.jest).toBeUndefined()
    expect(manifest.repository).toEqual(REPOSITORY)
    expect(manifest.files).toEqual(checkout.files)
    expect(manifest.version).toBe(checkout.version)
    expect(manifest.napi.targets).toEqual(checkout.napi.targets)
  })

  test('the main tarball holds the same files as one packed from the checkout', () => {
    const files = packedFiles(staged)
    expectOnlyShippedFiles(files)
    expect(files.sort()).toEqual(packedFiles(ROOT).sort())
  })

  test.each(Object.keys(PLATFORMS))('npm/%s is staged with its binary, and packs only that and its README', (abi) => {
    const dir = path.join(staged, 'npm', abi)
    expect(fs.readFileSync(path.join(dir, `handover.${abi}.node`), 'utf8')).toBe(abi)
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
    expect(INSTALL_SCRIPTS.filter((s) => manifest.scripts && manifest.scripts[s])).toEqual([])
    expect(packedFiles(dir).sort()).toEqual(['README.md', `handover.${abi}.node`, 'package.json'].sort())
  })
})
