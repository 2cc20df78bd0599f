'use strict'
// The built-in adapters (adapters/) against the real proxies: HAProxy,
// Caddy and nginx run as child processes on 127.0.0.1 with configs in a temp
// folder, in front of small HTTP servers on 127.0.0.2–127.0.0.4 that answer
// their own name. Ports 48000–48199. A proxy whose binary is missing is
// skipped, naming it (CI installs them: scripts/proxies.sh).

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { HAProxyAdapter, CaddyAdapter, NginxAdapter, adapterFor, routable } = require('../adapters')
const { waitFor, sleep, tempDir } = require('../test-support/loopback')

const BACKEND_PORT = 48001
const BACKENDS = { one: '127.0.0.2', two: '127.0.0.3', three: '127.0.0.4' }
const SLOW_MS = 400

const server = (name, state) => ({ id: name, address: BACKENDS[name], port: BACKEND_PORT, state })
let generation = 0
const table = (...servers) => ({ service: 'api', generation: ++generation, servers })

// apply→confirm times, printed once at the end (logged, not asserted).
const timings = []
async function timed(proxy, what, promise) {
  const started = process.hrtime.bigint()
  await promise
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  timings.push(`${proxy.padEnd(8)} ${what.padEnd(34)} ${ms.toFixed(1).padStart(7)} ms`)
}

let backends = []
beforeAll(async () => {
  backends = await Promise.all(
    Object.entries(BACKENDS).map(([name, address]) => {
      const s = http.createServer((req, res) => {
        const answer = () => res.end(name)
        if (req.url === '/slow') setTimeout(answer, SLOW_MS)
        else answer()
      })
      return new Promise((resolve, reject) => s.once('error', reject).listen(BACKEND_PORT, address, () => resolve(s)))
    }),
  )
})

afterAll(async () => {
  await Promise.all(backends.map((s) => new Promise((r) => s.close(r))))
  if (timings.length) console.log(`apply → confirmed, per proxy:\n${timings.join('\n')}`)
})

/** One GET on a new connection: { status, body }. */
function get(port, urlPath = '/') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, headers: { Connection: 'close' } })
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${urlPath} on ${port}: no answer in 5 s`)))
    req.on('error', reject)
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
  })
}

/** `n` requests, one after the other, each on a new connection: { name: count } (non-200 as "status N"). */
async function tally(port, n = 20) {
  const counts = {}
  for (let i = 0; i < n; i++) {
    const { status, body } = await get(port)
    const key = status === 200 ? body : `status ${status}`
    counts[key] = (counts[key] || 0) + 1
  }
  return counts
}

const installed = (binary) => spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

/**
 * A proxy as a child process in a process group of its own (nginx's workers
 * are in it too), so that stopping it leaves nothing behind.
 */
class ProxyProcess {
  constructor(label, command, args, options = {}) {
    Object.assign(this, { label, command, args, options, child: null, output: '' })
  }

  start() {
    const child = spawn(this.command, this.args, { ...this.options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    const keep = (d) => (this.output = (this.output + d).slice(-8000))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.exited = new Promise((resolve) => child.on('exit', resolve))
    return child
  }

  /** Ends the process group: SIGTERM (SIGKILL with `crash`), SIGKILL after 3 s if it lingers. */
  async stop({ crash = false } = {}) {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const group = (signal) => {
      try {
        process.kill(-child.pid, signal)
      } catch {}
    }
    group(crash ? 'SIGKILL' : 'SIGTERM')
    const timer = setTimeout(() => group('SIGKILL'), 3000)
    await child.exited
    clearTimeout(timer)
    // With the master gone, nginx's workers may still hold the port a moment.
    group('SIGKILL')
  }

  failure(what) {
    return new Error(`${this.label}: ${what}\n${this.output}`)
  }
}

// ---------------------------------------------------------------------------
// The proxies: how to start each, an adapter for it, and a direct look at its state.

const HAPROXY = {
  name: 'HAProxy',
  binary: 'haproxy',
  front: 48010,
  setup(dir) {
    this.socket = path.join(dir, 'admin.sock')
    const cfg = path.join(dir, 'haproxy.cfg')
    fs.writeFileSync(
      cfg,
      [
        'global',
        `  stats socket ${this.socket} level admin`,
        `  stats socket ipv4@127.0.0.1:48011 level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 10s',
        '  timeout server 10s',
        'frontend fe',
        `  bind 127.0.0.1:${this.front}`,
        '  default_backend app',
        'backend app',
        '  server-template slot 1-4 127.0.0.1:9 disabled',
        '',
      ].join('\n'),
    )
    return new ProxyProcess('haproxy', 'haproxy', ['-db', '-f', cfg])
  },
  async ready() {
    return (await accepts(this.front)) && fs.existsSync(this.socket)
  },
  adapter(options = {}) {
    return new HAProxyAdapter({ socket: this.socket, backend: 'app', ...options })
  },
  unreachable: () => [
    new HAProxyAdapter({ socket: '/nonexistent/haproxy.sock' }),
    /^cannot reach HAProxy's Runtime API at \/nonexistent\/haproxy\.sock: .*ENOENT.*; is HAProxy running, with `stats socket \/nonexistent\/haproxy\.sock level admin` in haproxy\.cfg's global section\?$/,
  ],
  /** What HAProxy itself says: the slots that are not in maintenance. */
  async state() {
    const slots = await this.adapter().slots()
    return slots.filter((s) => s.state !== 'maint').map((s) => `${s.addr}:${s.port} ${s.state}`).sort()
  },
}

const CADDY = {
  name: 'Caddy',
  binary: 'caddy',
  front: 48021,
  adminPort: 48020,
  setup(dir) {
    const config = path.join(dir, 'caddy.json')
    fs.writeFileSync(
      config,
      JSON.stringify({
        admin: { listen: `127.0.0.1:${this.adminPort}` },
        apps: {
          http: {
            servers: {
              app: {
                listen: [`127.0.0.1:${this.front}`],
                automatic_https: { disable: true },
                routes: [{ handle: [{ handler: 'reverse_proxy', '@id': 'handover', upstreams: [{ dial: '127.0.0.1:9' }] }] }],
              },
            },
          },
        },
      }),
    )
    const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir }
    return new ProxyProcess('caddy', 'caddy', ['run', '--config', config], { env })
  },
  async ready() {
    return (await accepts(this.front)) && (await accepts(this.adminPort))
  },
  adapter(options = {}) {
    return new CaddyAdapter({ admin: `http://127.0.0.1:${this.adminPort}`, ...options })
  },
  unreachable: () => [
    new CaddyAdapter({ admin: 'http://127.0.0.1:48029' }),
    /^cannot reach Caddy's admin API at http:\/\/127\.0\.0\.1:48029: connect ECONNREFUSED 127\.0\.0\.1:48029; is Caddy running/,
  ],
  async state() {
    const upstreams = await this.adapter().upstreams()
    return upstreams.map((u) => `${u.dial} ready`).sort()
  },
}

const NGINX = {
  name: 'nginx',
  binary: 'nginx',
  front: 48030,
  confirm: 48031,
  setup(dir) {
    this.dir = dir
    this.conf = path.join(dir, 'nginx.conf')
    this.file = path.join(dir, 'conf.d', 'handover.conf')
    fs.mkdirSync(path.join(dir, 'conf.d'), { recursive: true })
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true })
    const temp = path.join(dir, 'tmp')
    fs.writeFileSync(
      this.conf,
      [
        'daemon off;',
        'master_process on;',
        `pid ${path.join(dir, 'nginx.pid')};`,
        'error_log stderr;',
        'worker_processes 1;',
        'events { worker_connections 128; }',
        'http {',
        '  access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${temp};`),
        `  include ${path.join(dir, 'conf.d')}/*.conf;`,
        `  server { listen 127.0.0.1:${this.front}; location / { proxy_pass http://app; } }`,
        '}',
        '',
      ].join('\n'),
    )
    this.restoreOriginal()
    return new ProxyProcess('nginx', 'nginx', ['-e', 'stderr', '-p', dir, '-c', this.conf])
  },
  /** The upstream file as a user's image would ship it: no confirmation server yet. */
  restoreOriginal() {
    fs.writeFileSync(this.file, 'upstream app { server 127.0.0.1:9 down; }\n')
  },
  reloadCommand() {
    return ['nginx', '-e', 'stderr', '-p', this.dir, '-c', this.conf, '-s', 'reload']
  },
  async ready() {
    return accepts(this.front)
  },
  adapter(options = {}) {
    return new NginxAdapter({ file: this.file, upstream: 'app', reload: this.reloadCommand(), confirmPort: `127.0.0.1:${this.confirm}`, ...options })
  },
  unreachable() {
    // A prefix where no nginx runs: the reload command finds no pid file.
    const nowhere = path.join(this.dir, 'nowhere')
    fs.mkdirSync(nowhere, { recursive: true })
    fs.writeFileSync(path.join(nowhere, 'nginx.conf'), fs.readFileSync(this.conf, 'utf8').replace(/pid [^;]+;/, `pid ${nowhere}/nginx.pid;`))
    return [
      new NginxAdapter({
        file: path.join(nowhere, 'handover.conf'),
        reload: `nginx -e stderr -p ${nowhere} -c ${nowhere}/nginx.conf -s reload`,
        confirmPort: 48039,
      }),
      /^nginx's reload command `nginx -e stderr -p .* -s reload` failed \(exit 1\): .*nginx\.pid.*; is nginx running, and is the command right for it \(HANDOVER_NGINX_RELOAD\)\?$/s,
    ]
  },
  /** What the workers run: the upstream file nginx confirmed (its answer names the file's content). */
  async state() {
    const text = fs.readFileSync(this.file, 'utf8')
    const answer = (await get(this.confirm, '/handover-generation')).body
    if (!text.includes(`"${answer}"`)) return [`workers answer ${answer}, not the file's`]
    const block = /upstream app \{([^}]*)\}/.exec(text)[1]
    return [...block.matchAll(/server (\S+);/g)].map((m) => `${m[1]} ready`).sort()
  },
}

// ---------------------------------------------------------------------------

for (const proxy of [HAPROXY, CADDY, NGINX]) {
  const missing = installed(proxy.binary) ? null : `skipped: ${proxy.binary} is not installed (bash scripts/proxies.sh installs it)`
  if (missing) {
    process.stderr.write(`[${proxy.name} adapter] ${missing}\n`)
    describe(`${proxy.name} adapter`, () => test.skip(missing, () => {}))
    continue
  }

  describe(`${proxy.name} adapter`, () => {
    let dir
    let process_
    let adapter

    async function startProxy() {
      process_.start()
      await waitFor(async () => {
        if (process_.child.exitCode !== null) throw process_.failure(`exited ${process_.child.exitCode}`)
        return proxy.ready()
      }, 10000, `${proxy.name} to listen`).catch((e) => {
        throw process_.output ? process_.failure(e.message) : e
      })
    }

    beforeAll(async () => {
      dir = tempDir(`handover-${proxy.binary}-`)
      process_ = proxy.setup(dir)
      await startProxy()
      adapter = proxy.adapter()
    })

    afterAll(async () => {
      if (adapter) await adapter.close()
      if (process_) await process_.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    })

    test('(a) one ready server: every request reaches it', async () => {
      await timed(proxy.name, 'first server ready', adapter.apply(table(server('one', 'ready'))))
      expect(await tally(proxy.front, 10)).toEqual({ one: 10 })
    })

    test('(b) a second ready and the first draining: new requests go only to the second, at once; an in-flight one finishes', async () => {
      const slow = get(proxy.front, '/slow') // in flight on "one" while it drains
      await sleep(50)
      const applying = adapter.apply(table(server('two', 'ready'), server('one', 'drain')))
      await timed(proxy.name, 'second ready, first drain', applying)
      // No wait between the resolve and the requests: resolving means confirmed.
      expect(await tally(proxy.front, 20)).toEqual({ two: 20 })
      expect(await slow).toEqual({ status: 200, body: 'one' })
      const drainState = proxy.name === 'HAProxy' ? ['127.0.0.2:48001 drain', '127.0.0.3:48001 ready'] : ['127.0.0.3:48001 ready']
      expect(await proxy.state()).toEqual(drainState)

      // The same table again is a reconcile: cheap, and nothing changes.
      await timed(proxy.name, 'same table again (reconcile)', adapter.apply(table(server('two', 'ready'), server('one', 'drain'))))
      expect(await proxy.state()).toEqual(drainState)

      // The drained one goes.
      await timed(proxy.name, 'drained server removed', adapter.apply(table(server('two', 'ready'))))
      expect(await proxy.state()).toEqual(['127.0.0.3:48001 ready'])
      expect(await tally(proxy.front, 5)).toEqual({ two: 5 })
    })

    test('(c) after the proxy restarts with its original config, apply(the same table) repairs it', async () => {
      await process_.stop({ crash: true })
      if (proxy.restoreOriginal) proxy.restoreOriginal() // as a container restarted from its image
      await startProxy()
      expect(await tally(proxy.front, 3)).not.toEqual({ two: 3 }) // the original config does not route to "two"
      await timed(proxy.name, 'repair after restart', adapter.apply(table(server('two', 'ready'))))
      expect(await tally(proxy.front, 10)).toEqual({ two: 10 })
    }, 30000)

    test('(d) an unreachable control interface rejects with ERR_HANDOVER_PROXY, saying how to fix it', async () => {
      const [lost, message] = proxy.unreachable()
      const error = await lost.apply(table(server('one', 'ready'))).catch((e) => e)
      expect(error).toBeInstanceOf(Error)
      expect(error.code).toBe('ERR_HANDOVER_PROXY')
      expect(error.message).toMatch(message)
      // The real proxy is untouched.
      expect(await tally(proxy.front, 3)).toEqual({ two: 3 })
    })

    test('(e) with no ready server the draining ones stay routable; with no server at all nothing is routed', async () => {
      await adapter.apply(table(server('two', 'ready')))
      const lastResort = table(server('two', 'drain'))
      expect(routable(lastResort)).toEqual(lastResort.servers)
      await adapter.apply(lastResort)
      expect(await tally(proxy.front, 5)).toEqual({ two: 5 })

      await adapter.apply(table())
      expect(await proxy.state()).toEqual([])
      const empty = await tally(proxy.front, 3)
      expect(Object.keys(empty)).toEqual([expect.stringMatching(/^status 50[23]$/)])

      // And back: routable again from nothing.
      await adapter.apply(table(server('one', 'ready'), server('three', 'ready')))
      const both = await tally(proxy.front, 30)
      expect(Object.keys(both).sort()).toEqual(['one', 'three'])
    })
  })
}

// ---------------------------------------------------------------------------
// What only one proxy has.

test('HAProxy plan (no HAProxy needed): the order is ready, then drain, then maint, and a server keeps the slot that has its address', () => {
  const adapter = new HAProxyAdapter({ socket: '/unused', backend: 'app' })
  const slots = [
    { name: 'slot1', addr: '127.0.0.2', port: BACKEND_PORT, state: 'ready' },
    { name: 'slot2', addr: '127.0.0.4', port: BACKEND_PORT, state: 'ready' },
    { name: 'slot3', addr: '127.0.0.1', port: 9, state: 'maint' },
  ]
  const plan = adapter.plan(table(server('one', 'drain'), server('two', 'ready')), slots)
  expect(plan.commands).toEqual([
    'set server app/slot3 addr 127.0.0.3 port 48001', // a free slot in maintenance, not the one "three" still has
    'set server app/slot3 state ready',
    'set server app/slot1 state drain', // "one" stays in its slot
    'set server app/slot2 state maint',
  ])
})

;(installed('haproxy') ? describe : describe.skip)('HAProxy adapter: slots', () => {
  let dir
  let proxyProcess
  beforeAll(async () => {
    dir = tempDir('handover-haproxy-slots-')
    proxyProcess = HAPROXY.setup(dir)
    proxyProcess.start()
    await waitFor(() => HAPROXY.ready(), 10000, 'HAProxy to listen')
  })
  afterAll(async () => {
    await proxyProcess.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  test('more servers than slots: rejected before anything changes, naming the slot count', async () => {
    const adapter = HAPROXY.adapter()
    await adapter.apply(table(server('one', 'ready')))
    const five = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'].map((address) => ({ id: address, address, port: BACKEND_PORT, state: 'ready' }))
    const error = await adapter.apply(table(...five)).catch((e) => e)
    expect(error.code).toBe('ERR_HANDOVER_PROXY')
    expect(error.message).toMatch(/^HAProxy backend app has 4 slots but the table has 5 servers; raise the count in its `server-template` line/)
    expect(await HAPROXY.state()).toEqual(['127.0.0.2:48001 ready'])
  })

  test('the Runtime API over TCP (host:port) works the same; a wrong backend name is explained', async () => {
    const tcp = adapterFor('haproxy', { socket: '127.0.0.1:48011' })
    expect(tcp.describe()).toBe('HAProxy at 127.0.0.1:48011, backend app')
    await tcp.apply(table(server('three', 'ready')))
    expect(await HAPROXY.state()).toEqual(['127.0.0.4:48001 ready'])

    const wrong = await HAPROXY.adapter({ backend: 'api' }).apply(table()).catch((e) => e)
    expect(wrong.code).toBe('ERR_HANDOVER_PROXY')
    expect(wrong.message).toMatch(/^HAProxy has no backend api; set the backend option \(HANDOVER_HAPROXY_BACKEND\)/)
  })
})

;(installed('caddy') ? describe : describe.skip)('Caddy adapter: the handler', () => {
  let dir
  let proxyProcess
  beforeAll(async () => {
    dir = tempDir('handover-caddy-id-')
    proxyProcess = CADDY.setup(dir)
    proxyProcess.start()
    await waitFor(() => CADDY.ready(), 10000, 'Caddy to listen')
  })
  afterAll(async () => {
    await proxyProcess.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  test('an id Caddy does not know is explained', async () => {
    const error = await CADDY.adapter({ id: 'api' }).apply(table(server('one', 'ready'))).catch((e) => e)
    expect(error.code).toBe('ERR_HANDOVER_PROXY')
    expect(error.message).toMatch(/^Caddy has no config object with "@id": "api"; tag the reverse_proxy handler/)
  })

  test("a change that removes an upstream is confirmed only once Caddy's old servers had settleMs to stop", async () => {
    // Caddy answers the change while requests it routed to the removed upstream just before
    // may still be on their way (seen under load: an instance that closed at once cut them).
    const adapter = CADDY.adapter({ settleMs: 400 })
    await adapter.apply(table(server('one', 'ready'), server('two', 'ready')))
    const started = Date.now()
    await adapter.apply(table(server('two', 'ready')))
    expect(Date.now() - started).toBeGreaterThanOrEqual(395)
    expect(await CADDY.state()).toEqual(['127.0.0.3:48001 ready'])
    // The same table again (a retry, a reconcile) finds Caddy as it should be and waits out the rest.
    const removedAt = adapter.removedAt
    await adapter.apply(table(server('two', 'ready')))
    expect(Date.now() - removedAt).toBeGreaterThanOrEqual(395)
  })

  test('settleMs is whole milliseconds, as an option or HANDOVER_CADDY_SETTLE_MS', () => {
    for (const bad of [-1, 1.5, '1e3', 'soon', 60_001]) {
      expect(() => new CaddyAdapter({ settleMs: bad })).toThrow(expect.objectContaining({ code: 'ERR_HANDOVER_PROXY', message: expect.stringMatching(/^Caddy settleMs \(HANDOVER_CADDY_SETTLE_MS\) must be whole milliseconds/) }))
    }
    expect(new CaddyAdapter({ settleMs: 0 }).settleMs).toBe(0)
    expect(new CaddyAdapter().settleMs).toBe(100)
    process.env.HANDOVER_CADDY_SETTLE_MS = '40'
    try {
      expect(new CaddyAdapter().settleMs).toBe(40)
    } finally {
      delete process.env.HANDOVER_CADDY_SETTLE_MS
    }
  })

  test('a handler with no upstreams key at all gets one', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'caddy.json'), 'utf8'))
    delete config.apps.http.servers.app.routes[0].handle[0].upstreams
    await CADDY.adapter().request('POST', '/load', config)
    expect(await CADDY.adapter().upstreams()).toBe(null)
    await CADDY.adapter().apply(table(server('one', 'ready')))
    expect(await CADDY.state()).toEqual(['127.0.0.2:48001 ready'])
    expect(await tally(CADDY.front, 3)).toEqual({ one: 3 })
  })
})

;(installed('nginx') ? describe : describe.skip)('nginx adapter: confirmation', () => {
  let dir
  let proxyProcess
  beforeAll(async () => {
    dir = tempDir('handover-nginx-confirm-')
    proxyProcess = NGINX.setup(dir)
    proxyProcess.start()
    await waitFor(() => NGINX.ready(), 10000, 'nginx to listen')
  })
  afterAll(async () => {
    await proxyProcess.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  test('a reload that does not load the file (a command that does nothing) is not taken for done', async () => {
    const adapter = NGINX.adapter({ reload: 'true', timeoutMs: 500 })
    const error = await adapter.apply(table(server('one', 'ready'))).catch((e) => e)
    expect(error.code).toBe('ERR_HANDOVER_PROXY')
    expect(error.message).toMatch(/^nginx did not load .*handover\.conf within 500 ms: .*; does `nginx -t` pass, and does nginx.conf include/)
  })

  test('the file is replaced whole (no temp file left), and an unchanged table costs no reload', async () => {
    const adapter = NGINX.adapter({ reload: NGINX.reloadCommand() })
    await adapter.apply(table(server('one', 'ready')))
    expect(fs.readdirSync(path.dirname(NGINX.file))).toEqual(['handover.conf'])
    const pidBefore = fs.readFileSync(path.join(dir, 'nginx.pid'), 'utf8')
    // A reload command that would fail: it must not even run.
    await NGINX.adapter({ reload: 'false' }).apply(table(server('one', 'ready')))
    // A drained server nginx does not route to anyway changes nothing in the file either.
    await NGINX.adapter({ reload: 'false' }).apply(table(server('one', 'ready'), server('two', 'drain')))
    expect(fs.readFileSync(path.join(dir, 'nginx.pid'), 'utf8')).toBe(pidBefore)
    expect(await tally(NGINX.front, 5)).toEqual({ one: 5 })
  })
})
