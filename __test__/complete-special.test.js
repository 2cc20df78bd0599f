'use strict'
// A handover-complete path that is not a regular file (src/complete.rs): a
// character device or a FIFO is written into and stays what it is, a
// directory is refused, and the old peer's report says which. Each case is
// a real two-peer handover in a child process, on loopback ports 47100–47119.
//
// /dev/null as the complete path runs only as root, in a private mount
// namespace whose /dev is a fresh tmpfs with its own null, zero, random and
// urandom nodes: were the complete path ever replaced again, the copy would
// be, never this machine's /dev/null. (A mount namespace alone would not
// do: it shares the devtmpfs behind /dev.) Inside a user namespace mknod of
// a device is refused, so there the suite is skipped. FIFOs and directories
// need no namespace: they are made in a temp folder.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { isolationProblem, usesUserNamespace, describeUnless, CONTAINER_HINT } = require('../test-support/isolated')
const { tempDir: makeTempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')

const made = []
/** A fresh temp folder, removed after the file's tests. */
function tempDir() {
  made.push(makeTempDir('handover-special-'))
  return made[made.length - 1]
}
afterAll(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))
const CONTENT = /^Shutting down at \w{3} \w{3} \d\d \d{4} \d\d:\d\d:\d\d GMT\+0000 \(Coordinated Universal Time\)$/

// The old peer hands over to a young one; then the child says what its
// report was and what is at each path of LOOK_AT (lstat: links not followed).
const CHILD = `
  const fs = require('node:fs')
  const { HandoverPeer } = require(process.env.REPO + '/index.js')
  const options = { ...JSON.parse(process.env.OPTIONS), networkMode: 'host', networkInterface: 'lo', logLevel: 'error' }
  const old = new HandoverPeer(new Date(1000), undefined, options)
  old.startListening(() => {})
  new HandoverPeer(new Date(), undefined, options).startBroadcasting()
  const kindOf = (p) => {
    const s = fs.lstatSync(p)
    if (s.isCharacterDevice()) return { kind: 'character device', rdev: s.rdev, ino: s.ino }
    if (s.isFIFO()) return { kind: 'FIFO' }
    if (s.isSymbolicLink()) return { kind: 'symbolic link', to: fs.readlinkSync(p) }
    if (s.isDirectory()) return { kind: 'directory', entries: fs.readdirSync(p).sort() }
    return { kind: s.isFile() ? 'regular file' : 'other', size: s.size }
  }
  old.handover.then((report) => {
    const at = Object.fromEntries(JSON.parse(process.env.LOOK_AT).map((p) => [p, kindOf(p)]))
    console.log(JSON.stringify({ report, at }))
    process.exit(0)
  })
`

/** Runs the child (through `prefix`, a command and its arguments, when given); its report and what it saw. */
function handOver({ options, env = {}, lookAt, prefix = [] }) {
  const childEnv = { ...process.env, ...env, REPO: ROOT, OPTIONS: JSON.stringify(options), LOOK_AT: JSON.stringify(lookAt) }
  if (!('BALENA_SERVICE_HANDOVER_COMPLETE_PATH' in env)) delete childEnv.BALENA_SERVICE_HANDOVER_COMPLETE_PATH
  const [command, ...args] = [...prefix, process.execPath, '-e', CHILD]
  const result = spawnSync(command, args, { env: childEnv, encoding: 'utf8', timeout: 15_000 })
  if (result.error) throw result.error
  if (result.status !== 0) throw new Error(`child failed (${result.status ?? result.signal}): ${result.stderr}`)
  // The young peer's log lines may come before or after it (a thread of their own writes them).
  return JSON.parse(result.stdout.split('\n').find((line) => line.startsWith('{')))
}

function mkfifo(file) {
  const result = spawnSync('mkfifo', [file], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`mkfifo ${file}: ${result.error || result.stderr}`)
}

/** The read end of a FIFO, opened without waiting for a writer. */
const openReader = (fifo) => fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)

/** What the FIFO holds now ('' when nothing). */
function drain(fd) {
  const buffer = Buffer.alloc(4096)
  try {
    return buffer.toString('utf8', 0, fs.readSync(fd, buffer))
  } catch (error) {
    if (error.code === 'EAGAIN') return ''
    throw error
  }
}

describe('a complete path that is a FIFO or a directory', () => {
  test('a FIFO with a reader gets the content and stays a FIFO', () => {
    const dir = tempDir()
    const fifo = path.join(dir, 'complete')
    mkfifo(fifo)
    const reader = openReader(fifo)
    try {
      const { report, at } = handOver({ options: { port: 47100, handoverCompletePath: fifo }, lookAt: [fifo] })
      expect(report.completeFileError).toBeNull()
      expect(report.completeFile).toBe(fifo)
      expect(at[fifo]).toEqual({ kind: 'FIFO' })
      expect(drain(reader)).toMatch(CONTENT)
      expect(fs.readdirSync(dir)).toEqual(['complete'])
    } finally {
      fs.closeSync(reader)
    }
  })

  test('a FIFO nothing reads: the handover does not wait for a reader, the report says why nothing was written', () => {
    const dir = tempDir()
    const fifo = path.join(dir, 'complete')
    mkfifo(fifo)
    const { report, at } = handOver({
      options: { port: 47101 },
      env: { BALENA_SERVICE_HANDOVER_COMPLETE_PATH: fifo },
      lookAt: [fifo],
    })
    expect(report.completeFile).toBeNull()
    expect(report.completeFileError).toBe(
      `cannot write ${fifo}: it is a FIFO and nothing reads it: No such device or address (os error 6)`,
    )
    expect(at[fifo]).toEqual({ kind: 'FIFO' })
    expect(fs.readdirSync(dir)).toEqual(['complete'])
  })

  test('a symbolic link to a FIFO: the FIFO gets the content, and the link and the FIFO stay', () => {
    const dir = tempDir()
    const fifo = path.join(dir, 'fifo')
    const link = path.join(dir, 'complete')
    mkfifo(fifo)
    fs.symlinkSync('fifo', link)
    const reader = openReader(fifo)
    try {
      const { report, at } = handOver({ options: { port: 47102, handoverCompletePath: link }, lookAt: [link, fifo] })
      expect(report.completeFileError).toBeNull()
      expect(report.completeFile).toBe(link)
      expect(at).toEqual({ [link]: { kind: 'symbolic link', to: 'fifo' }, [fifo]: { kind: 'FIFO' } })
      expect(drain(reader)).toMatch(CONTENT)
      expect(fs.readdirSync(dir).sort()).toEqual(['complete', 'fifo'])
    } finally {
      fs.closeSync(reader)
    }
  })

  test('a directory is refused and left as it was', () => {
    const dir = tempDir()
    const folder = path.join(dir, 'complete')
    fs.mkdirSync(folder)
    fs.writeFileSync(path.join(folder, 'inside'), 'kept')
    const { report, at } = handOver({ options: { port: 47103, handoverCompletePath: folder }, lookAt: [folder] })
    expect(report.completeFile).toBeNull()
    expect(report.completeFileError).toMatch(`cannot write ${folder}: refused: it is a directory`)
    expect(at[folder]).toEqual({ kind: 'directory', entries: ['inside'] })
    expect(fs.readFileSync(path.join(folder, 'inside'), 'utf8')).toBe('kept')
    expect(fs.readdirSync(dir)).toEqual(['complete'])
  })
})

// A private /dev: a tmpfs over it, with the nodes Node may open.
const PRIVATE_DEV = [
  'mount -t tmpfs -o mode=755 tmpfs /dev',
  'mknod -m 666 /dev/null c 1 3',
  'mknod -m 666 /dev/zero c 1 5',
  'mknod -m 666 /dev/random c 1 8',
  'mknod -m 666 /dev/urandom c 1 9',
].join(' && ')
// --propagation private: the tmpfs over /dev must not reach the machine's mount namespace.
const IN_PRIVATE_DEV = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${PRIVATE_DEV} && exec "$0" "$@"`]

function privateDevProblem() {
  if (usesUserNamespace()) {
    return 'skipped: needs root: a private /dev needs mknod of character devices, which a user namespace refuses'
  }
  const mount = isolationProblem('mount')
  if (mount) return mount
  const [command, ...args] = IN_PRIVATE_DEV
  const result = spawnSync(command, [...args, 'test', '-c', '/dev/null'], { encoding: 'utf8', timeout: 10_000 })
  if (result.status === 0) return null
  const said = (result.error ? result.error.message : result.stderr.trim().split('\n').pop()) || `exit ${result.status}`
  return `skipped: needs a private /dev (tmpfs and mknod in a private mount namespace), which failed even as root (${said}); ${CONTAINER_HINT} and CAP_MKNOD`
}

describeUnless(privateDevProblem(), '/dev/null as the complete path (private /dev)', () => {
  const realNull = fs.statSync('/dev/null')
  const NULL_DEVICE = { kind: 'character device', rdev: realNull.rdev }
  const DEV_ENTRIES = { kind: 'directory', entries: ['null', 'random', 'urandom', 'zero'] }

  afterEach(() => {
    // Were the namespace not private, this is where it would show.
    const now = fs.lstatSync('/dev/null')
    expect([now.isCharacterDevice(), now.rdev, now.ino]).toEqual([true, realNull.rdev, realNull.ino])
  })

  test('BALENA_SERVICE_HANDOVER_COMPLETE_PATH=/dev/null is written into and stays a character device', () => {
    const { report, at } = handOver({
      options: { port: 47110 },
      env: { BALENA_SERVICE_HANDOVER_COMPLETE_PATH: '/dev/null' },
      lookAt: ['/dev/null', '/dev'],
      prefix: IN_PRIVATE_DEV,
    })
    expect(report.completeFileError).toBeNull()
    expect(report.completeFile).toBe('/dev/null')
    expect(at['/dev/null']).toMatchObject(NULL_DEVICE)
    expect(at['/dev']).toEqual(DEV_ENTRIES) // no temporary file left in /dev
  })

  test('a symbolic link to /dev/null: the device is written into, and the link and the device stay', () => {
    const dir = tempDir()
    const link = path.join(dir, 'complete')
    fs.symlinkSync('/dev/null', link)
    const { report, at } = handOver({
      options: { port: 47111, handoverCompletePath: link },
      lookAt: [link, '/dev/null', '/dev'],
      prefix: IN_PRIVATE_DEV,
    })
    expect(report.completeFileError).toBeNull()
    expect(report.completeFile).toBe(link)
    expect(at[link]).toEqual({ kind: 'symbolic link', to: '/dev/null' })
    expect(at['/dev/null']).toMatchObject(NULL_DEVICE)
    expect(at['/dev']).toEqual(DEV_ENTRIES)
    expect(fs.readdirSync(dir)).toEqual(['complete'])
  })
})
