#!/usr/bin/env node
'use strict'
// Stages a release outside the git checkout and publishes it from there. The
// release workflow and `npm run rehearse` both run exactly these commands.
//
//   node scripts/stage-release.js stage --out <dir> --artifacts <dir> [--platforms a,b]
//   node scripts/stage-release.js publish <dir> [--provenance]
//   node scripts/stage-release.js refuse
//
// Why a staging folder: a git checkout needs the `prepare` script (a clone
// runs `npm ci`, which must build the addon from source), but a published
// package must not build anything when it is installed. The staged copy holds
// what `npm pack` would ship from the checkout plus a package.json without
// scripts or devDependencies, and the platform packages (npm/*) with their
// binaries. The checkout's own npm/ folders are never written to.
//
// `stage`: --artifacts is a flat folder of handover.<platform>.node files (as
// `npm run cross` writes them). --platforms limits the release to some
// platforms (the rehearsal uses it when only some binaries exist); without
// it, every target in package.json must have its binary.
//
// `publish`: the platform packages first (`napi prepublish`, which also
// pins them as optionalDependencies of the main package at the same
// version), the main package last, so that nobody can install a main package
// whose binaries are not there yet. npm's own configuration decides where
// (registry, token), so the same command serves npmjs.org and a rehearsal.
//
// `refuse`: the checkout's `prepublishOnly`: publishing from the checkout
// would ship the `prepare` script.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')

// Fields of the checkout's package.json that only make sense in a checkout.
const CHECKOUT_ONLY_FIELDS = ['scripts', 'devDependencies', 'jest', 'optionalDependencies']
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare']

function fail(message) {
  process.stderr.write(`stage-release: ${message}\n`)
  process.exit(1)
}

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

function writeJson(file, value) {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n')
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options })
  if (result.status !== 0) fail(`${command} ${args.join(' ')} failed (${result.error || `exit ${result.status}`})`)
  return result
}

/** `--name value` pairs and bare words, in the order given. */
function parseArgs(argv) {
  const flags = {}
  const words = []
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) words.push(argv[i])
    else if (argv[i] === '--provenance') flags.provenance = true
    else flags[argv[i].slice(2)] = argv[++i]
  }
  return { flags, words }
}

/** napi's name for a target triple, e.g. x86_64-unknown-linux-gnu -> linux-x64-gnu. */
function platformOf(triple) {
  const { parseTriple } = require('@napi-rs/cli')
  return parseTriple(triple).platformArchABI
}

/** The files `npm pack` would put in the main package, from the checkout. */
function packedFiles() {
  const result = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })
  if (result.status !== 0) fail(`npm pack --dry-run failed:\n${result.stderr}`)
  return JSON.parse(result.stdout)[0].files.map((f) => f.path)
}

/** The main package's manifest as published: no scripts, no dev tooling. */
function publishedManifest(platforms) {
  const manifest = readJson(path.join(ROOT, 'package.json'))
  for (const field of CHECKOUT_ONLY_FIELDS) delete manifest[field]
  // `napi prepublish` reads the targets from here; limit them to the release.
  manifest.napi.targets = manifest.napi.targets.filter((triple) => platforms.includes(platformOf(triple)))
  return manifest
}

/** Fails on a platform package that would install wrongly or break provenance. */
function checkPlatformManifest(platform, manifest) {
  const problems = []
  if (manifest.name !== `handover-native-${platform}`) problems.push(`name is ${manifest.name}`)
  if (manifest.main !== `handover.${platform}.node`) problems.push(`main is ${manifest.main}`)
  if (!manifest.repository) problems.push('no repository (npm provenance needs it)')
  if (platform.startsWith('linux-') && !(manifest.libc && manifest.libc.length)) problems.push('a Linux package without libc')
  const scripts = INSTALL_SCRIPTS.filter((name) => manifest.scripts && manifest.scripts[name])
  if (scripts.length) problems.push(`install scripts: ${scripts.join(', ')}`)
  if (problems.length) fail(`npm/${platform}/package.json: ${problems.join('; ')}`)
}

/** npm/<platform> into the staging folder, with its binary from the artifacts. */
function stagePlatform(platform, artifacts, out) {
  const from = path.join(ROOT, 'npm', platform)
  const to = path.join(out, 'npm', platform)
  fs.mkdirSync(to, { recursive: true })
  // Only the package's own text files: a stray binary in the checkout must not ship.
  for (const file of ['package.json', 'README.md']) fs.copyFileSync(path.join(from, file), path.join(to, file))
  const binary = `handover.${platform}.node`
  fs.copyFileSync(path.join(artifacts, binary), path.join(to, binary))
}

function stage(flags) {
  if (!flags.out || !flags.artifacts) fail('stage needs --out <dir> and --artifacts <dir>')
  const out = path.resolve(flags.out)
  const artifacts = path.resolve(flags.artifacts)
  if (fs.existsSync(out) && fs.readdirSync(out).length) fail(`${out} is not empty`)

  const allPlatforms = readJson(path.join(ROOT, 'package.json')).napi.targets.map(platformOf)
  const platforms = flags.platforms ? flags.platforms.split(',') : allPlatforms
  const unknown = platforms.filter((p) => !allPlatforms.includes(p))
  if (unknown.length) fail(`not in napi.targets: ${unknown.join(', ')}`)
  const missing = platforms.filter((p) => !fs.existsSync(path.join(artifacts, `handover.${p}.node`)))
  if (missing.length) fail(`no binary in ${artifacts} for: ${missing.join(', ')} (npm run cross builds them)`)
  // Before anything is written: a bad manifest leaves no half-staged folder.
  for (const platform of platforms) checkPlatformManifest(platform, readJson(path.join(ROOT, 'npm', platform, 'package.json')))

  fs.mkdirSync(out, { recursive: true })
  for (const file of packedFiles()) {
    if (file === 'package.json') continue
    fs.mkdirSync(path.dirname(path.join(out, file)), { recursive: true })
    fs.copyFileSync(path.join(ROOT, file), path.join(out, file))
  }
  writeJson(path.join(out, 'package.json'), publishedManifest(platforms))
  for (const platform of platforms) stagePlatform(platform, artifacts, out)
  process.stdout.write(`staged ${platforms.join(', ')} in ${out}\n`)
}

/** The napi CLI of the checkout's dev dependencies (the staged folder has none). */
function napiCli() {
  const manifest = require.resolve('@napi-rs/cli/package.json')
  return path.join(path.dirname(manifest), readJson(manifest).bin.napi)
}

function publish(flags, words) {
  const dir = words[0] && path.resolve(words[0])
  if (!dir || !fs.existsSync(path.join(dir, 'package.json'))) fail('publish needs the staged folder')
  const manifest = readJson(path.join(dir, 'package.json'))
  if (manifest.scripts) fail(`${dir} is not a staged release (its package.json has scripts)`)
  // npm reads npm_config_* from the environment; `napi prepublish` runs a
  // plain `npm publish` per platform package, so provenance goes this way.
  const env = { ...process.env }
  if (flags.provenance) env.npm_config_provenance = 'true'
  const napi = napiCli()
  run(process.execPath, [napi, 'prepublish', '--npm-dir', 'npm', '--no-gh-release'], { cwd: dir, env })
  run('npm', ['publish', '--access', 'public', ...(flags.provenance ? ['--provenance'] : [])], { cwd: dir, env })
}

function main() {
  const [command, ...rest] = process.argv.slice(2)
  const { flags, words } = parseArgs(rest)
  if (command === 'stage') return stage(flags)
  if (command === 'publish') return publish(flags, words)
  if (command === 'refuse') {
    fail('publish a staged copy, not the checkout: see the publish job of .github/workflows/release.yml (`npm run rehearse` tries it locally)')
  }
  fail('usage: stage-release.js stage --out <dir> --artifacts <dir> [--platforms a,b] | publish <dir> [--provenance]')
}

main()
