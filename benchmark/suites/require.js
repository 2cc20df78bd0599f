'use strict'
// require('handover-native') as a service does it, against a minimal napi-rs
// addon (benchmark/minimal/: one exported function) and the floor addon
// (benchmark/floor/, SPEC §7's yardstick), both built here with cargo.
//
// Every sample is a fresh `node -e` that reads hrtime and RSS just before and
// just after one require(); the implementations take turns, the order
// flipping every round. Each is installed as a consumer has it, in one
// temporary node_modules: handover-native (index.js, binding.js,
// binding-errors.js, package.json) with its platform package
// (handover-native-<platform>: package.json and the binary built in this
// checkout), and each yardstick as a package whose index.js is one
// require('./<addon>.node'), the least JS any addon package has. The binaries
// alone (require() of the .node file by its path, no JS) tell what is the
// addon's own from what the JS adds.

const { execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { alternate } = require('../lib/alternate.js')
const { prepareFloor, prepareMinimal } = require('../lib/floor.js')
const { median } = require('../lib/stats.js')

const ROOT = path.join(__dirname, '..', '..')
const MiB = 2 ** 20
const RATIO = 1.2
const TIMEOUT_MS = 30000

/** This machine's build name (linux-x64-gnu, darwin-arm64…); libc as Node itself reports it. */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime)
    if (arch === 'arm') return `linux-arm-${glibc ? 'gnueabihf' : 'musleabihf'}`
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`
}

function writeJson(file, value) {
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + '\n')
}

/** A package in `modules` whose index.js requires `addon`, copied in beside it. */
function addonPackage(modules, name, addon) {
  const dir = path.join(modules, name)
  fs.mkdirSync(dir)
  fs.copyFileSync(addon, path.join(dir, 'addon.node'))
  fs.writeFileSync(path.join(dir, 'index.js'), "module.exports = require('./addon.node')\n")
  writeJson(path.join(dir, 'package.json'), { name, version: '0.0.0', main: 'index.js' })
  return path.join(dir, 'addon.node')
}

/** The consumer folder: { dir, requests: { impl: what `require()` gets } }. */
function install(binary, platform, yardsticks) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-bench-require-'))
  const modules = path.join(dir, 'node_modules')
  const ours = path.join(modules, 'handover-native')
  fs.mkdirSync(ours, { recursive: true })
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  // What the published tarball holds of the JS (package.json's files), bar the CLI, types and docs.
  for (const file of ['index.js', 'router.js', 'binding.js', 'binding-errors.js']) {
    if (!manifest.files.includes(file)) throw new Error(`${file} is not in package.json's files: update benchmark/suites/require.js`)
    fs.copyFileSync(path.join(ROOT, file), path.join(ours, file))
  }
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(ours, 'package.json'))
  const platformPackage = path.join(modules, `handover-native-${platform}`)
  fs.mkdirSync(platformPackage)
  fs.copyFileSync(path.join(ROOT, 'npm', platform, 'package.json'), path.join(platformPackage, 'package.json'))
  const oursBinary = path.join(platformPackage, `handover.${platform}.node`)
  fs.copyFileSync(binary, oursBinary)

  const requests = { bare: null, ours: 'handover-native', oursBinary }
  for (const [impl, addon] of Object.entries(yardsticks)) {
    requests[`${impl}Binary`] = addonPackage(modules, `${impl}-napi-addon`, addon)
    requests[impl] = `${impl}-napi-addon`
  }
  return { dir, requests }
}

/**
 * One fresh process: hrtime and RSS around one require() (none for bare),
 * then, once measured, the anonymous memory of the whole process (Linux).
 */
function sampleScript(request) {
  return [
    'const rss0 = process.memoryUsage.rss()',
    'const t0 = process.hrtime.bigint()',
    request === null ? '' : `require(${JSON.stringify(request)})`,
    'const t1 = process.hrtime.bigint()',
    'const rss1 = process.memoryUsage.rss()',
    'let anonBytes = null',
    'try {',
    "  const rollup = require('fs').readFileSync('/proc/self/smaps_rollup', 'utf8')",
    '  anonBytes = 1024 * Number(/^Anonymous:\\s+(\\d+)/m.exec(rollup)[1])',
    '} catch (error) {}',
    'console.log(JSON.stringify({ requireNs: Number(t1 - t0), rssBytes: rss1 - rss0, anonBytes }))',
  ].join('\n')
}

function sample(dir, request) {
  return new Promise((resolve, reject) => {
    // Nothing in the environment may point the loader elsewhere.
    const env = { ...process.env }
    for (const name of ['HANDOVER_NATIVE_LIBRARY_PATH', 'NAPI_RS_NATIVE_LIBRARY_PATH', 'NODE_PATH', 'NODE_OPTIONS']) delete env[name]
    execFile(process.execPath, ['-e', sampleScript(request)], { cwd: dir, env, timeout: TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`require(${request}) failed: ${error.message}\n${stderr}`))
      resolve(JSON.parse(stdout.trim().split('\n').pop()))
    })
  })
}

async function requireSection(ctx) {
  const runs = ctx.quick ? 5 : 31
  const platform = platformName()
  const binary = path.join(ROOT, `handover.${platform}.node`)
  if (!fs.existsSync(binary)) throw new Error(`no ${path.basename(binary)} in the checkout: npm run build first`)
  const yardsticks = {}
  const skipped = []
  for (const [impl, prepare] of [
    ['minimal', prepareMinimal],
    ['floor', prepareFloor],
  ]) {
    const built = prepare(ctx.progress, 'require')
    if (built.skipped) skipped.push(built.skipped)
    else yardsticks[impl] = built.addon
  }
  if (!yardsticks.minimal) throw new Error(`cannot measure against the minimal addon: ${skipped.join('; ')}`)

  const { dir, requests } = install(binary, platform, yardsticks)
  try {
    const impls = Object.keys(requests)
    ctx.progress(`require: a warm-up, then ${runs} fresh \`node -e\` each of ${impls.join(', ')}, turn by turn`)
    const run = (impl) => sample(dir, requests[impl])
    await alternate(impls, 1, run) // fills the page cache; not counted
    const samples = await alternate(impls, runs, run)
    return sections(samples, runs, skipped)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function sections(samples, runs, skipped) {
  const med = (impl, pick) => (samples[impl] ? median(samples[impl].map(pick)) : null)
  const ms = (s) => s.requireNs / 1e6
  const rss = (s) => s.rssBytes / MiB
  const bare = med('bare', (s) => s.anonBytes)
  const anonOverBare = (s) => (s.anonBytes === null || bare === null ? null : (s.anonBytes - bare) / MiB)
  const target = { ratioAtMost: RATIO }

  const against = (other) => [
    { figure: `\`require()\` wall time, fresh \`node -e\` (median of ${runs})`, unit: 'ms', ours: med('ours', ms), [other]: med(other, ms), target },
    { figure: 'RSS added by `require()` (after − before)', unit: 'MiB', ours: med('ours', rss), [other]: med(other, rss), target },
    {
      figure: 'anonymous memory of the process after `require()`, over bare node (smaps_rollup)',
      unit: 'MiB',
      ours: med('ours', anonOverBare),
      [other]: med(other, anonOverBare),
    },
    { figure: 'the binary alone: `require()` of the .node file, wall time', unit: 'ms', ours: med('oursBinary', ms), [other]: med(`${other}Binary`, ms) },
    { figure: 'the binary alone: RSS added', unit: 'MiB', ours: med('oursBinary', rss), [other]: med(`${other}Binary`, rss) },
  ]

  const notes = [
    `Every sample is a fresh \`node -e\` that reads hrtime and RSS around one \`require()\`; ${runs} rounds, the order flipping every ` +
      'round, after one warm-up round. Medians.',
    'Ours is installed as a consumer has it: `node_modules/handover-native` (index.js, binding.js, binding-errors.js, package.json) ' +
      'and `node_modules/handover-native-<platform>` (package.json and the binary of this checkout), so its `require()` includes ' +
      "binding.js's search (the local build it does not find, the platform package) and the version check. Each yardstick is a " +
      "package whose index.js is one `require('./addon.node')`.",
    'RSS counts the pages of files mapped in, which are shared with the page cache: the dynamic linker looking up every ' +
      "napi_* symbol an addon imports in node's own symbol tables maps pages of the node binary, and the addon's code maps " +
      'pages of its file. The anonymous-memory row leaves those out: what the process allocated (JS heap, compiled code, the ' +
      "addon's data).",
    '`node -e` pays the first `require()` of a file in the process (≈1 ms here for a one-line file), ours and the yardsticks alike.',
  ]
  const result = [
    {
      title: '`require()`: ours against a minimal napi-rs addon (one exported function)',
      against: 'minimal',
      rows: against('minimal'),
      notes: [
        ...notes,
        '`benchmark/minimal/` is a napi-rs crate with one `#[napi]` function, built by the bench with the same release profile as ours.',
      ],
      raw: samples,
    },
  ]
  if (samples.floor) {
    result.push({
      title: '`require()`: ours against the floor addon (SPEC §7)',
      against: 'floor',
      rows: against('floor'),
      notes: ['The same samples as the section above; the floor (`benchmark/floor/`: napi-rs + tokio, one class) is the yardstick SPEC §7 names.'],
    })
  } else if (skipped.length) {
    result[0].notes.push(`Not measured against the floor: ${skipped.join('; ')}.`)
  }
  return result
}

module.exports = { require: requireSection }
