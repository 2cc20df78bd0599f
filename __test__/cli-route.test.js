'use strict'
// `handover route haproxy` as users run it: a child process driving a real
// HAProxy (on 127.0.0.1, config in a temp folder) from status messages of
// instances in this process, and telling them DRAINED. Ports 48480–48489.
// Skipped, saying so, when haproxy is not installed (CI installs it:
// scripts/proxies.sh).

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const path = require('node:path')
const { HandoverStatus } = require('..')
const { waitFor, tempDir } = require('../test-support/loopback')

const CLI = path.join(__dirname, '..', 'cli', 'handover.js')
const STATUS_PORT = 48480
const ROUTER_PORT = 48481
const FRONTEND_PORT = 48482
const hasHAProxy = spawnSync('haproxy', ['-v']).status === 0
const maybe = hasHAProxy ? test : test.skip
if (!hasHAProxy) console.warn('cli-route.test.js: haproxy is not installed; skipping (scripts/proxies.sh installs it)')

const children = []
const open = []
afterEach(() => {
  while (open.length) open.pop().close()
  while (children.length) children.pop().kill('SIGKILL')
})

function cleanEnv() {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (/^(SHUTDOWN_|HANDOVER_|NETWORK_INTERFACE$|BALENA_SERVICE_|LOGLEVEL$)/.test(key)) delete env[key]
  }
  return env
}

function startRoute(socket) {
  const child = spawn(
    process.execPath,
    [CLI, 'route', 'haproxy', '--service', 'api', '--service-port', '8080', '--socket', socket, '--backend', 'app',
      '--interface', '127.0.0.1', '--subnet', '127.0.0.0/8', '--status-port', String(STATUS_PORT),
      '--router-port', String(ROUTER_PORT), '--name', 'edge', '--up-period', '500'],
    { env: cleanEnv() },
  )
  children.push(child)
  const out = { text: '' }
  child.stdout.on('data', (chunk) => (out.text += chunk))
  child.stderr.on('data', (chunk) => (out.text += chunk))
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, out, exited }
}

function startHAProxy(dir) {
  const socket = path.join(dir, 'admin.sock')
  const cfg = path.join(dir, 'haproxy.cfg')
  fs.writeFileSync(
    cfg,
    [
      'global',
      `  stats socket ${socket} level admin`,
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 5s',
      '  timeout server 5s',
      'frontend web',
      `  bind 127.0.0.1:${FRONTEND_PORT}`,
      '  default_backend app',
      'backend app',
      '  server-template slot 1-4 127.0.0.1:9 disabled',
      '',
    ].join('\n'),
  )
  const child = spawn('haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' })
  children.push(child)
  return socket
}

/** One Runtime API command. */
function runtime(socket, command) {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket)
    let text = ''
    connection.on('error', reject)
    connection.on('data', (chunk) => (text += chunk))
    connection.on('end', () => resolve(text))
    connection.end(`${command}\n`)
  })
}

/**
 * "addr:port state" of every slot in use, from srv_admin_state's bits:
 * 0x23 maintenance (forced, inherited, resolution), 0x18 drain; 0x04 only
 * remembers that the config said `disabled`.
 */
async function slots(socket) {
  const text = await runtime(socket, 'show servers state app').catch(() => '')
  return text
    .split('\n')
    .filter((line) => /^\d+ app /.test(line))
    .map((line) => line.split(' '))
    .filter((f) => f[4] !== '127.0.0.1')
    .map((f) => {
      const admin = Number(f[6])
      const state = admin & 0x23 ? 'maint' : admin & 0x18 ? 'drain' : 'ready'
      return `${f[4]}:${f[18]} ${state}`
    })
}

maybe('routes an instance that says UP, drains it on DOWN and tells it DRAINED once HAProxy confirmed', async () => {
  const dir = tempDir('handover-route-')
  const socket = startHAProxy(dir)
  await waitFor(() => fs.existsSync(socket), 5000, 'the HAProxy socket')
  const route = startRoute(socket)
  await waitFor(() => route.out.text.includes('routing service api'), 5000, 'the router started')

  const options = { port: STATUS_PORT, routerPort: ROUTER_PORT, networkMode: 'host', networkInterface: '127.0.0.1', logLevel: 'error' }
  const v1 = new HandoverStatus(new Date(1_000), 'api', ['127.0.0.2'], { id: 'v1' }, options)
  const v2 = new HandoverStatus(new Date(2_000), 'api', ['127.0.0.3'], { id: 'v2' }, options)
  open.push(v1, v2)
  v1.startBroadcastingServiceUp()
  await waitFor(async () => (await slots(socket)).join() === '127.0.0.2:8080 ready', 5000, 'v1 in a slot')
  v2.startBroadcastingServiceUp()
  await waitFor(async () => (await slots(socket)).length === 2, 5000, 'v2 in a slot')
  const report = await v1.drain({ timeoutMs: 5000 })
  expect(report.timedOut).toEqual([])
  expect(report.acknowledged.map((r) => r.name)).toEqual(['edge'])
  // The drain was applied before DRAINED: HAProxy says so.
  expect((await slots(socket)).sort()).toEqual(['127.0.0.2:8080 drain', '127.0.0.3:8080 ready'])
  expect(route.out.text).toMatch(/instance 1000 of api at 127\.0\.0\.2: routable/)
  expect(route.out.text).toMatch(/instance 1000: drain confirmed by the proxy/)

  route.child.kill('SIGTERM')
  expect(await route.exited).toBe(0)
  expect(route.out.text).toMatch(/stopped\n$/)
  fs.rmSync(dir, { recursive: true, force: true })
}, 30_000)

test('an unreachable Runtime API is said clearly, once, and retried until the process is stopped', async () => {
  const dir = tempDir('handover-route-')
  const route = startRoute(path.join(dir, 'missing.sock'))
  await waitFor(() => /cannot reach HAProxy's Runtime API/.test(route.out.text), 8000, 'the unreachable line')
  expect(route.out.text.match(/cannot reach/g)).toHaveLength(1)
  route.child.kill('SIGTERM')
  expect(await route.exited).toBe(0)
  fs.rmSync(dir, { recursive: true, force: true })
}, 20_000)

test('usage errors exit 2 and say what is missing', () => {
  const run = (...args) => spawnSync(process.execPath, [CLI, 'route', ...args], { env: cleanEnv(), encoding: 'utf8' })
  const none = run()
  expect(none.status).toBe(2)
  expect(none.stderr).toMatch(/route takes haproxy, caddy or nginx/)
  expect(run('haproxy').stderr).toMatch(/--service NAME/)
  expect(run('haproxy', '--service', 'api').stderr).toMatch(/--service-port N/)
  expect(run('haproxy', '--service', 'api', '--service-port', 'x').stderr).toMatch(/whole number/)
  expect(run('nginx', '--service', 'api', '--service-port', '80', '--socket', 's').stderr).toMatch(/--socket is for haproxy/)
  expect(run('haproxy', '--service', 'api', '--service-port', '80', '--settle', '100').stderr).toMatch(/--settle is for caddy/)
  expect(run('caddy', '--service', 'api', '--service-port', '80', '--settle', '0.5').stderr).toMatch(/--settle must be a whole number; got '0\.5'/)
  expect(run('haproxy', '--service', 'api', '--service-port', '80', '--subnet', '10.0.0.0/77').stderr).toMatch(/prefix length/)
})
