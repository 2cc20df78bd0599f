'use strict'
// A service bundled with webpack (node-loader), esbuild (CommonJS and ES
// module output) and @vercel/ncc runs from a copy of its output folder
// alone, with the binary the bundler put beside it: the recipes of
// "Bundling" in README.md. The package is installed as a consumer gets it:
// the release staged by scripts/stage-release.js (this platform only, with
// the binary built in this checkout), packed, and installed offline from the
// tarballs. Linux only (the binary of this checkout is a Linux one).
// Loopback ports 24680–24689; nothing listens or sends.

const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')
const SERVICE = path.join(__dirname, 'fixtures', 'bundled-service')
const BIN = path.join(ROOT, 'node_modules', '.bin')
const VERSION = require('../package.json').version
const SETUP_MS = 120000
// esbuild's ES module output has no `require` of its own for the CommonJS it bundles.
const ESM_BANNER = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);"

/** This machine's build name (linux-x64-gnu…), worked out independently of binding.js. */
function thisPlatform() {
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
  if (process.arch === 'arm') return `linux-arm-${glibc ? 'gnueabihf' : 'musleabihf'}`
  return `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`
}

const PLATFORM = process.platform === 'linux' ? thisPlatform() : null
const BINARY = PLATFORM && `handover.${PLATFORM}.node`
const BUILT = BINARY && path.join(ROOT, BINARY)
const RUNNABLE = Boolean(BUILT && fs.existsSync(BUILT))
const maybe = RUNNABLE ? describe : describe.skip

/** Each bundler: the command that bundles service.js (or .mjs) in the consumer folder, and what it writes. */
const BUNDLERS = [
  {
    name: 'webpack + node-loader',
    command: [path.join(BIN, 'webpack'), '--config', 'webpack.config.js'],
    out: 'dist-webpack',
    main: 'service.js',
    port: 24680,
  },
  {
    name: 'esbuild, CommonJS',
    command: [
      path.join(BIN, 'esbuild'),
      'service.js',
      '--bundle',
      '--platform=node',
      '--outdir=dist-esbuild',
      '--loader:.node=copy',
      '--asset-names=[name]',
    ],
    out: 'dist-esbuild',
    main: 'service.js',
    port: 24681,
  },
  {
    name: 'esbuild, ES module',
    command: [
      path.join(BIN, 'esbuild'),
      'service.mjs',
      '--bundle',
      '--platform=node',
      '--format=esm',
      '--outfile=dist-esm/service.mjs',
      '--loader:.node=copy',
      '--asset-names=[name]',
      `--banner:js=${ESM_BANNER}`,
    ],
    out: 'dist-esm',
    main: 'service.mjs',
    port: 24682,
  },
  {
    name: '@vercel/ncc',
    // --no-cache: nothing written under ~/.cache/ncc.
    command: [path.join(BIN, 'ncc'), 'build', 'service.js', '-o', 'dist-ncc', '--quiet', '--no-cache'],
    out: 'dist-ncc',
    main: 'index.js',
    port: 24683,
  },
]

/** The environment without anything that could point the loader at a binary, nor Node at modules. */
function cleanEnv(extra = {}) {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(HANDOVER_|NAPI_RS_|NODE_PATH$|NODE_OPTIONS$|npm_)/i.test(key)) delete env[key]
  }
  return { ...env, ...extra }
}

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, env: cleanEnv(), encoding: 'utf8', stdio: 'pipe' })
}

let work
let consumer

/**
 * The consumer folder: the fixture service and handover-native installed
 * from the staged release's tarballs (main package and this platform's).
 */
function installConsumer() {
  const artifacts = path.join(work, 'artifacts')
  fs.mkdirSync(artifacts)
  fs.copyFileSync(BUILT, path.join(artifacts, BINARY))
  const staged = path.join(work, 'staged')
  run(process.execPath, [path.join(ROOT, 'scripts', 'stage-release.js'), 'stage', '--out', staged, '--artifacts', artifacts, '--platforms', PLATFORM], ROOT)
  const tarballs = path.join(work, 'tarballs')
  fs.mkdirSync(tarballs)
  for (const dir of [staged, path.join(staged, 'npm', PLATFORM)]) {
    run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', tarballs], dir)
  }

  consumer = path.join(work, 'consumer')
  fs.mkdirSync(consumer)
  for (const file of fs.readdirSync(SERVICE)) fs.copyFileSync(path.join(SERVICE, file), path.join(consumer, file))
  fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'bundled-service', version: '1.0.0', private: true }))
  const packed = fs.readdirSync(tarballs).map((file) => path.join(tarballs, file))
  run('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', ...packed], consumer)
  // webpack looks for its loaders in the consumer's node_modules: this checkout's node-loader.
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'node-loader'), path.join(consumer, 'node_modules', 'node-loader'), 'dir')
}

/** A copy of a bundler's output folder, alone in a fresh folder (no node_modules anywhere above it). */
function copyOutput(bundler) {
  const target = tempDir('handover-bundled-run-')
  fs.cpSync(path.join(consumer, bundler.out), path.join(target, bundler.out), { recursive: true })
  return target
}

/** Runs the bundled service in `dir` (its working directory); { status, stdout, stderr, result }. */
function runService(bundler, dir, env = {}) {
  const child = spawnSync(process.execPath, [path.join(dir, bundler.out, bundler.main)], {
    cwd: dir,
    env: cleanEnv({ PORT: String(bundler.port), ...env }),
    encoding: 'utf8',
    timeout: 20000,
  })
  let result = null
  try {
    result = JSON.parse(child.stdout.trim().split('\n').pop())
  } catch (error) {
    // No JSON line: the service failed; stderr says why.
  }
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, result }
}

maybe('bundled services run from their output folder', () => {
  const runs = []

  beforeAll(() => {
    work = tempDir('handover-bundlers-')
    installConsumer()
    // The package installed as a consumer has it (the tarballs are what a release publishes).
    expect(require(path.join(consumer, 'node_modules', 'handover-native', 'package.json')).version).toBe(VERSION)
    for (const bundler of BUNDLERS) {
      const [command, ...args] = bundler.command
      const build = spawnSync(command, args, { cwd: consumer, env: cleanEnv(), encoding: 'utf8' })
      bundler.build = build
    }
  }, SETUP_MS)

  afterAll(() => {
    for (const dir of runs) fs.rmSync(dir, { recursive: true, force: true })
    if (work) fs.rmSync(work, { recursive: true, force: true })
  })

  describe.each(BUNDLERS)('$name', (bundler) => {
    test('bundles, and puts the binary next to the bundle', () => {
      const { status, stdout, stderr } = bundler.build
      expect({ status, stderr }).toEqual({ status: 0, stderr: expect.any(String) })
      // The binaries of other platforms are not installed; the recipes say so without a warning.
      expect(`${stdout}\n${stderr}`).not.toMatch(/WARNING|warning/)
      expect(fs.readdirSync(path.join(consumer, bundler.out)).sort()).toEqual([BINARY, bundler.main].sort())
    })

    test('runs from a copy of the output folder alone, with the binary next to it', () => {
      const dir = copyOutput(bundler)
      runs.push(dir)
      const { status, stderr, result } = runService(bundler, dir)
      expect({ status, stderr }).toEqual({ status: 0, stderr: '' })
      expect(result.packet).toEqual({ kind: 'status', timestamp: 1700000000000, serviceName: 'bundled', addresses: ['127.0.0.1'], status: 'running' })
      expect(result.port).toBe(bundler.port)
      expect(result.binaries).toEqual([path.join(fs.realpathSync(dir), bundler.out, BINARY)])
    })

    test('without the binary, says it looks bundled and how to take the binary along', () => {
      const dir = copyOutput(bundler)
      runs.push(dir)
      fs.rmSync(path.join(dir, bundler.out, BINARY))
      const { status, stderr } = runService(bundler, dir)
      expect(status).not.toBe(0)
      expect(stderr).toContain("code: 'ERR_HANDOVER_NO_BINARY'")
      expect(stderr).toContain('This looks like a bundle')
      expect(stderr).toContain(`ship ${BINARY} next to the bundle file`)
      expect(stderr).toContain('node-loader')
      expect(stderr).toContain('HANDOVER_NATIVE_LIBRARY_PATH')
    })

    test('HANDOVER_NATIVE_LIBRARY_PATH, relative to the working directory, loads from inside the bundle', () => {
      const dir = copyOutput(bundler)
      runs.push(dir)
      fs.mkdirSync(path.join(dir, 'lib'))
      fs.renameSync(path.join(dir, bundler.out, BINARY), path.join(dir, 'lib', 'addon.node'))
      const { status, stderr, result } = runService(bundler, dir, { HANDOVER_NATIVE_LIBRARY_PATH: 'lib/addon.node' })
      expect({ status, stderr }).toEqual({ status: 0, stderr: '' })
      expect(result.binaries).toEqual([path.join(fs.realpathSync(dir), 'lib', 'addon.node')])
    })
  })
})
