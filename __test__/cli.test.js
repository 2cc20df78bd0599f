'use strict'
// The `handover` command, run as a child process. Everything is pinned to
// loopback (host mode on lo); ports 24000–24099 belong to this file.

const { execFile, execFileSync, spawn } = require('node:child_process')
const dgram = require('node:dgram')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const CLI = path.join(__dirname, '..', 'cli', 'handover.js')
const LOOPBACK = ['--network-mode', 'host', '--interface', 'lo']
const GROUP = '239.192.16.16'
const UNICAST = ['--address', '127.0.0.1', '--status-address', '127.0.0.1']

/** The environment without the library's variables, so the machine's settings cannot leak in. */
function cleanEnv(extra = {}) {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(SHUTDOWN_|HANDOVER_|NETWORK_INTERFACE$|BALENA_SERVICE_|LOGLEVEL$)/.test(key)) delete env[key]
  }
  return { ...env, ...extra }
}

/** Runs the CLI to completion. */
function run(args, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: cleanEnv(env), timeout: 10000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
}

/** Starts `handover watch` and resolves once its sockets are bound (it says so on stderr). */
function startWatch(args) {
  const child = spawn(process.execPath, [CLI, 'watch', ...args], { env: cleanEnv() })
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk) => (output.stdout += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve({ code, ...output })))
  const ready = new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      output.stderr += chunk
      if (output.stderr.includes('watching')) resolve()
    })
    exited.then(() => reject(new Error(`watch exited early: ${output.stderr}`)))
  })
  return { child, ready, exited }
}

/** Sends one datagram to the group through loopback only. */
function sendToGroup(bytes, port) {
  const socket = dgram.createSocket('udp4')
  return new Promise((resolve, reject) => {
    socket.bind(0, '127.0.0.1', () => {
      socket.setMulticastInterface('127.0.0.1')
      socket.send(bytes, port, GROUP, (error) => {
        socket.close()
        error ? reject(error) : resolve()
      })
    })
  })
}

describe('help', () => {
  test.each(['watch', 'announce', 'status', 'decode'])('%s --help prints its usage and exits 0', async (command) => {
    const { code, stdout } = await run([command, '--help'])
    expect(code).toBe(0)
    expect(stdout).toMatch(new RegExp(`^Usage: handover ${command}`))
  })

  test('--help lists every command', async () => {
    const { code, stdout } = await run(['--help'])
    expect(code).toBe(0)
    for (const command of ['watch', 'announce', 'status', 'decode']) expect(stdout).toContain(`  ${command}`)
  })

  test('an unknown command prints the usage and exits 2', async () => {
    const { code, stderr } = await run(['frobnicate'])
    expect(code).toBe(2)
    expect(stderr).toContain("unknown command 'frobnicate'")
    expect(stderr).toContain('Usage: handover <command>')
  })

  test('no command at all is a usage error', async () => {
    expect((await run([])).code).toBe(2)
  })

  test('--help says how to get the version', async () => {
    expect((await run(['--help'])).stdout).toContain('-v/--version')
  })
})

describe('version', () => {
  const { version } = require('../package.json')

  test.each(['--version', '-v'])('%s prints the package version and exits 0', async (flag) => {
    expect(await run([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' })
  })

  test('--version works even when the addon cannot load', async () => {
    const missing = path.join(os.tmpdir(), 'handover-cli-test-no-such-addon.node')
    expect(await run(['--version'], { HANDOVER_NATIVE_LIBRARY_PATH: missing })).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' })
    // The same environment does break a command that needs the addon.
    expect((await run(['decode', '01'], { HANDOVER_NATIVE_LIBRARY_PATH: missing })).stderr).toContain('ERR_HANDOVER_NO_BINARY')
  })
})

describe("help shows the library's variables and defaults", () => {
  const native = require('../binding.js')
  const FLAGS = {
    '--port N': ['port', 'handover'],
    '--address A': ['address', 'handover'],
    '--status-port N': ['port', 'status'],
    '--status-address A': ['address', 'status'],
    '--network-mode M': ['networkMode', 'handover'],
    '--interface I': ['networkInterface', 'handover'],
    '--interval MS': ['heartbeatIntervalMs', 'handover'],
  }
  const described = (option, channel, settings = native.settingDescriptions()) =>
    settings.find((s) => s.option === option && (s.channel === null || s.channel === channel))

  /** The "(VARIABLE; default X)" line under each flag of a help text. */
  function sources(help) {
    const found = {}
    const pattern = /^ {2}(--[\w-]+ \S+) .*\n {22}.*\((\w+); default ([^),]+)/gm
    for (let match; (match = pattern.exec(help)); ) found[match[1]] = { variable: match[2], default: match[3] }
    return found
  }

  test.each(['watch', 'announce', 'status'])('%s --help: every variable and default is the native description', async (command) => {
    const { stdout } = await run([command, '--help'])
    const shown = sources(stdout)
    expect(Object.keys(shown).length).toBeGreaterThanOrEqual(3)
    const { '--log-level L': logLevel, ...channelFlags } = shown
    for (const [flag, value] of Object.entries(channelFlags)) {
      const setting = described(...FLAGS[flag])
      expect({ flag, ...value }).toEqual({ flag, variable: setting.variable, default: setting.default })
    }
    // The CLI's own default, beside the library's.
    if (command !== 'watch') {
      expect(logLevel).toEqual({ variable: 'LOGLEVEL', default: 'warning here' })
      expect(stdout).toContain(`default warning here, ${described('logLevel', 'handover').default} in the library)`)
    }
  })

  test('a different native description shows in the help', async () => {
    // A stand-in for the addon that changes one default and one variable, loaded through the loader's own override.
    const probe = `require(${JSON.stringify(path.join(__dirname, '..', 'binding.js'))}); ` +
      "process.stdout.write(Object.keys(require.cache).find((file) => file.endsWith('.node')))"
    const addon = execFileSync(process.execPath, ['-e', probe], { env: cleanEnv(), encoding: 'utf8' })
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-cli-'))
    const standIn = path.join(folder, 'addon.js')
    fs.writeFileSync(
      standIn,
      `const addon = require(${JSON.stringify(addon)})
module.exports = Object.assign(Object.create(addon), {
  settingDescriptions: () => addon.settingDescriptions().map((s) =>
    s.option === 'port' && s.channel === 'status' ? { ...s, default: '4242' } :
    s.option === 'networkInterface' ? { ...s, variable: 'SOME_OTHER_INTERFACE' } : s),
})
`,
    )
    try {
      const { code, stdout } = await run(['watch', '--help'], { HANDOVER_NATIVE_LIBRARY_PATH: standIn })
      expect(code).toBe(0)
      expect(sources(stdout)['--status-port N']).toEqual({ variable: 'HANDOVER_STATUS_PORT', default: '4242' })
      expect(sources(stdout)['--interface I']).toEqual({ variable: 'SOME_OTHER_INTERFACE', default: 'supervisor0' })
      expect(sources(stdout)['--port N']).toEqual({ variable: 'SHUTDOWN_PORT', default: '1536' })
    } finally {
      fs.rmSync(folder, { recursive: true, force: true })
    }
  })
})

describe('decode', () => {
  test('a v1 announcement', async () => {
    const { code, stdout } = await run(['decode', '--json', '010000018bcfe56800'])
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toEqual({
      kind: 'announcement',
      extended: false,
      timestamp: 1700000000000,
      date: '2023-11-14T22:13:20.000Z',
    })
  })

  test('human form names the kind and the date', async () => {
    const { code, stdout } = await run(['decode', '01 00 00 01 8b cf e5 68 00'])
    expect(code).toBe(0)
    expect(stdout).toMatch(/^announcement v1 plain .*2023-11-14T22:13:20\.000Z \(1700000000000 ms\)/)
  })

  test('a malformed packet: its length, reason and a hex preview, and exit status 1', async () => {
    const { code, stdout } = await run(['decode', '--json', '0900ff'])
    expect(code).toBe(1)
    expect(JSON.parse(stdout)).toMatchObject({ kind: 'malformed', length: 3, preview: '0900ff', reason: expect.stringMatching(/version/) })
    const human = await run(['decode', '0102'])
    expect(human.code).toBe(1)
    expect(human.stdout).toMatch(/^malformed \(too short.*\) 2 bytes: 0102/)
    expect((await run(['decode', '00'])).code).toBe(1)
  })

  test('one invalid packet among valid ones: every packet is described, and the status is 1', async () => {
    const { code, stdout, stderr } = await run(['decode', '--json', '010000018bcfe56800', '00', '010000018bcfe56800'])
    expect(code).toBe(1)
    expect(stderr).toBe('')
    expect(stdout.trim().split('\n').map((line) => JSON.parse(line).kind)).toEqual(['announcement', 'malformed', 'announcement'])
  })

  test('its help documents the exit status', async () => {
    const { stdout } = await run(['decode', '--help'])
    expect(stdout).toMatch(/Exit status:\n  0 .*\n  1 .*not a valid packet.*\n  2 .*usage/)
  })

  test('text that is not hex is a usage error', async () => {
    const { code, stderr } = await run(['decode', 'xyz'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/^handover: 'xyz' is not a packet in hex/)
  })
})

// What `decode` and `watch` print, in process: an absent field must stay
// `null` (format.js checks `=== null`), and no key may be `undefined`.
describe('describePacket', () => {
  const { describePacket, encodeStatusMessage } = require('..')

  const { extensionField: field, extendedAnnouncement: extended } = require('../test-support/loopback')

  function freshness(sentAtMs, sequence) {
    const value = Buffer.alloc(16)
    value.writeBigInt64BE(BigInt(sentAtMs))
    value.writeBigUInt64BE(sequence, 8)
    return field(0x04, value)
  }

  test('a plain announcement has kind, timestamp and extended, and nothing else', () => {
    const plain = { kind: 'announcement', timestamp: 1700000000000, extended: false }
    const bytes = Buffer.from('ff010000018bcfe56800', 'hex')
    expect(describePacket(bytes.subarray(1))).toStrictEqual(plain)
    expect(describePacket(new Uint8Array(bytes.buffer, bytes.byteOffset + 1, 9))).toStrictEqual(plain)
  })

  test('an extended announcement without fields: every field is null', () => {
    expect(describePacket(extended(5, []))).toStrictEqual({
      kind: 'announcement',
      timestamp: 5,
      extended: true,
      extensionVersion: 1,
      service: null,
      instance: null,
      bootId: null,
      bootStartedAtUs: null,
      sentAt: null,
      sequence: null,
      signed: false,
    })
  })

  test('an extended announcement with every field: text and numbers', () => {
    const boot = Buffer.alloc(24, 0x11)
    boot.writeBigInt64BE(-123456789012n, 16)
    const fields = [field(0x01, Buffer.from('api')), field(0x02, Buffer.alloc(8, 0xab)), field(0x03, boot), freshness(1700000000001, 42n)]
    expect(describePacket(extended(1700000000000, [...fields, field(0x7f, Buffer.alloc(32))]))).toStrictEqual({
      kind: 'announcement',
      timestamp: 1700000000000,
      extended: true,
      extensionVersion: 1,
      service: 'api',
      instance: 'ab'.repeat(8),
      bootId: '11'.repeat(16),
      bootStartedAtUs: -123456789012,
      sentAt: 1700000000001,
      sequence: 42,
      signed: true,
    })
  })

  test('a sequence beyond 2^53 is the nearest number, not a BigInt', () => {
    expect(describePacket(extended(5, [freshness(0, 2n ** 64n - 1n)])).sequence).toBe(2 ** 64)
  })

  test('a status message', () => {
    expect(describePacket(encodeStatusMessage(1700000000000, 'api', ['10.0.0.2', '127.0.0.1'], 'UP'))).toStrictEqual({
      kind: 'status',
      timestamp: 1700000000000,
      serviceName: 'api',
      addresses: ['10.0.0.2', '127.0.0.1'],
      status: 'UP',
    })
  })

  test('malformed bytes: why, how many, and the start of them in hex', () => {
    expect(describePacket(Buffer.from('090102', 'hex'))).toStrictEqual({
      kind: 'malformed',
      reason: 'unknown version byte 0x09',
      length: 3,
      preview: '090102',
    })
    expect(describePacket(Buffer.alloc(0))).toStrictEqual({ kind: 'malformed', reason: 'empty', length: 0, preview: '' })
  })
})

describe('watch with announce and status on loopback', () => {
  test('prints one decoded JSON line per packet, then exits after --count', async () => {
    const handover = ['--port', '24010']
    const status = ['--status-port', '24011']
    const watch = startWatch([...LOOPBACK, ...handover, ...status, '--count', '3', '--json', '--timeout', '8000'])
    await watch.ready

    const announced = await run(['announce', ...LOOPBACK, ...handover, '--service', 'api', '--timestamp', '1700000000000'])
    expect(announced).toMatchObject({ code: 0, stdout: expect.stringContaining('service=api') })
    const sent = await run(['status', 'up', ...LOOPBACK, ...status, '--service', 'api', '--address', '10.0.0.7', '--address', '127.0.0.1'])
    expect(sent.code).toBe(0)
    await sendToGroup(Buffer.from([0x07, 0xaa]), 24011)

    const { code, stdout } = await watch.exited
    expect(code).toBe(0)
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(lines).toHaveLength(3)
    const byKind = Object.fromEntries(lines.map((line) => [line.kind, line]))
    expect(byKind.announcement).toMatchObject({
      channel: 'handover',
      extended: true,
      service: 'api',
      signed: false,
      timestamp: 1700000000000,
      date: '2023-11-14T22:13:20.000Z',
      from: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    })
    expect(byKind.status).toMatchObject({ channel: 'status', serviceName: 'api', status: 'UP', addresses: ['10.0.0.7', '127.0.0.1'] })
    expect(byKind.malformed).toMatchObject({ channel: 'status', length: 2, preview: '07aa' })
  })

  test('human lines: time, source, channel and what the packet says', async () => {
    const watch = startWatch([...LOOPBACK, '--port', '24012', '--status-port', '24013', '--count', '1', '--timeout', '8000'])
    await watch.ready
    await run(['status', 'down', ...LOOPBACK, '--status-port', '24013', '--service', 'web', '--address', '127.0.0.1'])
    const { code, stdout } = await watch.exited
    expect(code).toBe(0)
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +127\.0\.0\.1:\d+ +status +status v2 DOWN service=web addresses=127\.0\.0\.1 /)
  })

  test('Ctrl-C stops watching with exit code 0', async () => {
    const watch = startWatch([...LOOPBACK, '--port', '24014', '--status-port', '24015'])
    await watch.ready
    watch.child.kill('SIGINT')
    expect((await watch.exited).code).toBe(0)
  })

  test('--timeout before --count is reached fails with exit code 1', async () => {
    const { code, stderr } = await run(['watch', ...LOOPBACK, '--port', '24016', '--status-port', '24017', '--count', '1', '--timeout', '200'])
    expect(code).toBe(1)
    expect(stderr).toContain('timed out after 200 ms having heard 0 of 1 packets')
  })
})

describe('errors say what to fix', () => {
  test.each([
    [['watch', '--port', '70000'], /^handover: --port must be from 1 to 65535; got 70000/],
    [['announce', '--port', 'abc'], /^handover: --port must be an integer from 1 to 65535; got 'abc'/],
    [['watch', '--status-port', '0'], /^handover: --status-port must be from 1 to 65535; got 0/],
    [['announce', '--log-level', 'loud'], /^handover: --log-level must be one of emerg, .*; got 'loud'/],
    [['watch', '--status-address', '1.2.3'], /^handover: --status-address must be an IPv4 address.*got '1\.2\.3'/],
    [['announce', '--address', 'not-an-ip'], /^handover: --address must be an IPv4 address/],
    [['status', 'up', '--service', 'api', '--address', '::1'], /^handover: .*IPv4 address.*'::1'/],
    [['status', 'up', '--service', 'x'.repeat(64), '--address', '127.0.0.1'], /^handover: .*64 bytes/],
    [['status', 'sideways', '--service', 'api', '--address', '127.0.0.1'], /^handover: status takes 'up' or 'down'/],
    [['announce', '--timestamp', 'soon'], /^handover: --timestamp must be/],
    [['watch', '--frequency', '3'], /^handover: Unknown option '--frequency'/],
  ])('%j exits 2', async (args, message) => {
    const { code, stderr } = await run([...args, ...LOOPBACK])
    expect(code).toBe(2)
    expect(stderr).toMatch(message)
  })

  test.each([
    [['watch', ...LOOPBACK], { SHUTDOWN_PORT: '0' }, /^handover: SHUTDOWN_PORT must be from 1 to 65535; got 0/],
    [['watch', ...LOOPBACK], { HANDOVER_STATUS_PORT: 'x' }, /^handover: HANDOVER_STATUS_PORT must be an integer .*got 'x'/],
    [['announce', ...LOOPBACK], { SHUTDOWN_BROADCAST_ADDRESS: '1.2.3' }, /^handover: SHUTDOWN_BROADCAST_ADDRESS must be an IPv4 address/],
    [
      ['status', 'up', '--service', 'api', '--address', '127.0.0.1', ...LOOPBACK],
      { HANDOVER_STATUS_BROADCAST_ADDRESS: '::1' },
      /^handover: HANDOVER_STATUS_BROADCAST_ADDRESS must be an IPv4 address.*got '::1'/,
    ],
    // Unicast to loopback, so that nothing could leave the machine were the value not refused.
    [
      ['watch', ...UNICAST, '--port', '24022', '--status-port', '24023', '--timeout', '100'],
      { HANDOVER_NETWORK_MODE: 'overlay' },
      /^handover: HANDOVER_NETWORK_MODE must be 'bridge' or 'host'; got 'overlay'/,
    ],
    [
      ['announce', '--network-mode', 'host', '--address', '127.0.0.1', '--port', '24022'],
      { NETWORK_INTERFACE: 'nosuch0' },
      /^handover: interface nosuch0 not found \(from NETWORK_INTERFACE\)/,
    ],
  ])('a bad value from the environment names the variable: %j with %j', async (args, env, message) => {
    const { code, stderr } = await run(args, env)
    expect(code).toBe(2)
    expect(stderr).toMatch(message)
  })

  test('a flag wins over a bad value of its variable, as an option does in the library', async () => {
    const args = ['watch', ...LOOPBACK, '--port', '24020', '--status-port', '24021', '--timeout', '100']
    const { code, stderr } = await run(args, { SHUTDOWN_PORT: '0', HANDOVER_STATUS_PORT: 'x' })
    expect(code).toBe(0)
    expect(stderr).toContain('watching handover 239.192.16.16:24020 on lo (127.0.0.1) and status 239.192.16.16:24021')
  })

  test('host mode on a missing interface is refused rather than falling back to the LAN', async () => {
    const { code, stderr } = await run(['announce', '--network-mode', 'host', '--interface', 'nosuch0'])
    expect(code).toBe(2)
    expect(stderr).toMatch(/^handover: interface nosuch0 not found \(from --interface\)/)
    expect(stderr).toContain('fall back to the default interface')
    expect(stderr).toContain('lo')
  })

  test('a port held by a program that does not share it: exit code 1', async () => {
    const holder = dgram.createSocket({ type: 'udp4', reuseAddr: false })
    await new Promise((resolve) => holder.bind(24018, resolve))
    try {
      const { code, stderr } = await run(['watch', ...LOOPBACK, '--port', '24018', '--status-port', '24019'])
      expect(code).toBe(1)
      expect(stderr).toMatch(/^handover: port 24018 \(handover channel\) is in use/)
    } finally {
      holder.close()
    }
  })
})
