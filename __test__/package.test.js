'use strict'
// What `npm publish` would ship: the loader, the types, the CLI and the docs;
// no Rust sources, tests, benchmarks or build output.

const { execFileSync } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

function packedFiles() {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })
  return JSON.parse(out)[0].files.map((f) => f.path)
}

test('the tarball holds the loader, the types, the CLI and the README, and nothing else', () => {
  const files = packedFiles()
  for (const wanted of ['index.js', 'index.d.ts', 'binding.js', 'binding.d.ts', 'cli/handover.js', 'README.md', 'package.json']) {
    expect(files).toContain(wanted)
  }
  const unwanted = files.filter((f) =>
    /^(src|__test__|test-support|benchmark|examples|target|npm|scripts|node_modules)\/|\.node$|\.rs$|Cargo\.|\.test\.js$/.test(f),
  )
  expect(unwanted).toEqual([])
})

test('the package declares the CLI and a prebuilt binary package for each balena platform', () => {
  const pkg = require('../package.json')
  expect(pkg.bin).toEqual({ handover: 'cli/handover.js' })
  expect(pkg.napi.binaryName).toBe('handover')
  expect(pkg.napi.targets.sort()).toEqual(
    [
      'aarch64-unknown-linux-gnu',
      'aarch64-unknown-linux-musl',
      'armv7-unknown-linux-gnueabihf',
      'x86_64-unknown-linux-gnu',
      'x86_64-unknown-linux-musl',
    ].sort(),
  )
  for (const abi of ['linux-x64-gnu', 'linux-x64-musl', 'linux-arm64-gnu', 'linux-arm64-musl', 'linux-arm-gnueabihf']) {
    const platform = require(`../npm/${abi}/package.json`)
    expect(platform.name).toBe(`handover-native-${abi}`)
    expect(platform.main).toBe(`handover.${abi}.node`)
  }
})
