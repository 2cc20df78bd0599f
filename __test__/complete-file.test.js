'use strict'
// Where the handover-complete file lands (SPEC §5.4), on a real file system:
// each case runs a child in private mount and network namespaces where /tmp
// is an empty tmpfs, so the real /tmp/balena and /tmp/resin are never
// touched. As root, or inside a user namespace (test-support/isolated.js).
// Paths of the caller's choosing (relative, symlinked) run without
// namespaces, in a child whose working directory is a temp folder, on
// loopback ports 24620–24629.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { SETUP, unshareArgs, isolationProblem, describeUnless } = require('../test-support/isolated')
const { tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

// The repository may live under /tmp: bind it to /mnt before /tmp is hidden.
const CHILD = `
  const fs = require('node:fs')
  const { HandoverPeer } = require('/mnt/index.js')
  for (const dir of JSON.parse(process.env.MAKE_DIRS)) fs.mkdirSync(dir, { recursive: true })
  const old = new HandoverPeer(new Date(1000), undefined, { port: 1536, logLevel: 'error' })
  old.startListening(async () => {})
  new HandoverPeer(new Date(), undefined, { port: 1536 }).startBroadcasting()
  old.handover.then((report) => {
    const files = ['/tmp/balena/handover-complete', '/tmp/resin/resin-kill-me', '/tmp/custom/done']
      .filter((f) => fs.existsSync(f))
    console.log(JSON.stringify({ report, files }))
    process.exit(0)
  })
`

function handOverWith({ makeDirs, env = {} }) {
  const script = `mount --rbind "$REPO" /mnt && mount -t tmpfs tmpfs /tmp && ${SETUP.replace(' && exec "$0" "$@"', '')} && exec "$0" "$@"`
  const args = [...unshareArgs('--mount', '--net'), 'sh', '-c', script, process.execPath, '-e', CHILD]
  const result = spawnSync('unshare', args, {
    env: { ...process.env, ...env, REPO: ROOT, MAKE_DIRS: JSON.stringify(makeDirs) },
    encoding: 'utf8',
    timeout: 15_000,
  })
  if (result.status !== 0) throw new Error(`child failed (${result.status}): ${result.stderr}`)
  return resultLine(result.stdout)
}

/** The child's JSON line; the young peer's log lines may come before or after it (they are written by a thread of their own). */
function resultLine(stdout) {
  return JSON.parse(stdout.split('\n').find((line) => line.startsWith('{')))
}

describeUnless(isolationProblem('net', 'mount'), 'the handover-complete file (private /tmp)', () => {
  test('defaults to /tmp/balena/handover-complete', () => {
    const { report, files } = handOverWith({ makeDirs: ['/tmp/balena', '/tmp/resin'] })
    expect(report.completeFile).toBe('/tmp/balena/handover-complete')
    expect(files).toEqual(['/tmp/balena/handover-complete'])
  })

  test('falls back to the legacy /tmp/resin/resin-kill-me when only /tmp/resin exists', () => {
    const { report, files } = handOverWith({ makeDirs: ['/tmp/resin'] })
    expect(report.completeFile).toBe('/tmp/resin/resin-kill-me')
    expect(files).toEqual(['/tmp/resin/resin-kill-me'])
  })

  test('BALENA_SERVICE_HANDOVER_COMPLETE_PATH wins over the default', () => {
    const { report, files } = handOverWith({
      makeDirs: ['/tmp/balena', '/tmp/custom'],
      env: { BALENA_SERVICE_HANDOVER_COMPLETE_PATH: '/tmp/custom/done' },
    })
    expect(report.completeFile).toBe('/tmp/custom/done')
    expect(files).toEqual(['/tmp/custom/done'])
  })

  test('with no folder at all, the failure names the path and nothing is written', () => {
    const { report, files } = handOverWith({ makeDirs: [] })
    expect(report.completeFile).toBeNull()
    expect(report.completeFileError).toMatch(/cannot write \/tmp\/balena\/handover-complete: folder \/tmp\/balena does not exist/)
    expect(report.completeFileError).toContain('/tmp/resin/resin-kill-me')
    expect(files).toEqual([])
  })
})

// A handover in a child process on loopback, with `cwd` as its working
// directory; resolves to the old peer's report.
const LOOPBACK_CHILD = `
  const { HandoverPeer } = require(process.env.REPO + '/index.js')
  const options = { ...JSON.parse(process.env.OPTIONS), networkMode: 'host', networkInterface: 'lo', logLevel: 'error' }
  const old = new HandoverPeer(new Date(1000), undefined, options)
  old.startListening(() => {})
  new HandoverPeer(new Date(), undefined, options).startBroadcasting()
  old.handover.then((report) => {
    console.log(JSON.stringify(report))
    process.exit(0)
  })
`

function handOverIn(cwd, options, env = {}) {
  const childEnv = { ...process.env, ...env, REPO: ROOT, OPTIONS: JSON.stringify(options) }
  if (!('BALENA_SERVICE_HANDOVER_COMPLETE_PATH' in env)) delete childEnv.BALENA_SERVICE_HANDOVER_COMPLETE_PATH
  const result = spawnSync(process.execPath, ['-e', LOOPBACK_CHILD], { cwd, env: childEnv, encoding: 'utf8', timeout: 15_000 })
  if (result.status !== 0) throw new Error(`child failed (${result.status}): ${result.stderr}`)
  return resultLine(result.stdout)
}

describe('a complete path of the caller\'s choosing', () => {
  test.each([
    ['the option', { port: 24620, handoverCompletePath: 'done' }, {}],
    ['BALENA_SERVICE_HANDOVER_COMPLETE_PATH', { port: 24621 }, { BALENA_SERVICE_HANDOVER_COMPLETE_PATH: 'done' }],
  ])('a bare relative name from %s is written in the working directory, like ./done', (_, options, env) => {
    const cwd = tempDir()
    const report = handOverIn(cwd, options, env)
    expect(report.completeFileError).toBeNull()
    expect(report.completeFile).toBe('done')
    expect(fs.readFileSync(path.join(cwd, 'done'), 'utf8')).toMatch(/^Shutting down at /)
    expect(fs.readdirSync(cwd)).toEqual(['done'])
  })

  test('a symbolic link is written through, like the original: the link stays, its target gets the content', () => {
    const dir = tempDir()
    fs.mkdirSync(path.join(dir, 'watched'))
    fs.writeFileSync(path.join(dir, 'watched', 'complete'), 'stale')
    fs.symlinkSync(path.join('watched', 'complete'), path.join(dir, 'done'))
    const report = handOverIn(dir, { port: 24622, handoverCompletePath: path.join(dir, 'done') })
    expect(report.completeFileError).toBeNull()
    expect(report.completeFile).toBe(path.join(dir, 'done'))
    expect(fs.lstatSync(path.join(dir, 'done')).isSymbolicLink()).toBe(true)
    expect(fs.readlinkSync(path.join(dir, 'done'))).toBe(path.join('watched', 'complete'))
    expect(fs.readFileSync(path.join(dir, 'watched', 'complete'), 'utf8')).toMatch(/^Shutting down at /)
    expect(fs.readdirSync(path.join(dir, 'watched'))).toEqual(['complete'])
  })
})
