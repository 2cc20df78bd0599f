'use strict'
// The router's security rules (docs/ROUTING.md, "Security") against an
// attacker on the same segment, each process in a network namespace of its
// own on one bridge, as containers of one app: the proxy with its router
// (10.213.16.1), two instances of the service (.2 and .3), and an attacker
// (.66) that hears the group and sends whatever it likes. __test__/router.test.js
// checks the same rules on loopback, in one process; here the packets come
// from another host's address, the attacker learns what it forges from the
// wire (a router's id, a signed UP), and the router's adapter is a
// recording one in the router's process (support/router-roles.js).
//
// Nothing leaves the machine: every process runs inside the topology's
// namespaces, whose only link is their bridge.

const { bridgeNetwork } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PacketSender, eventually, sleep } = require('./support/peer-process')
const {
  RouterProcess,
  InstanceProcess,
  CaptureProcess,
  statusMessage,
  signedStatusMessage,
  addressesOf,
  routerMessage,
  ROUTER_KIND,
} = require('./support/router-process')

const SECRET = 'the secret of this app'
const NETWORK = {
  proxy: '10.213.16.1/24',
  v1: '10.213.16.2/24',
  v2: '10.213.16.3/24',
  attacker: '10.213.16.66/24',
}
const ip = (role) => NETWORK[role].split('/')[0]
const STATUS_PORT = 1537
const ROUTER_PORT = 1538
/** The instances repeat UP this often, the router's UP period is a little longer: a killed instance is gone in 1.5 s. */
const HEARTBEAT_MS = 300
const UP_PERIOD_MS = 500

function routerOptions(extra = {}) {
  return {
    serviceName: 'api',
    servicePort: 8080,
    interfaceAddress: ip('proxy'),
    name: 'edge',
    upPeriodMs: UP_PERIOD_MS,
    ...extra,
  }
}

/**
 * A legit instance of 'api' on its namespace's address: v1 in host mode on
 * its interface, v2 in bridge mode (the namespace routes the group out of
 * eth0), so that both ways of joining are covered.
 */
function instance(topology, role, startedAt, env = {}) {
  const mode = role === 'v1' ? { networkMode: 'host', networkInterface: ip(role) } : {}
  return InstanceProcess.start(topology, role, {
    startedAt,
    addresses: [ip(role)],
    options: { heartbeatIntervalMs: HEARTBEAT_MS, logLevel: 'debug', ...mode },
    env,
  })
}

/** Sends `packets` to the status port `rounds` times, a little apart. */
async function flood(attacker, packets, { rounds = 3, port = STATUS_PORT } = {}) {
  for (let i = 0; i < rounds; i++) {
    await attacker.send(packets, { port })
    await sleep(50)
  }
}

describeScenario('scenario: a router on a bridge network with an attacker on it', () => {
  let topology

  beforeEach(() => {
    topology = bridgeNetwork('rspoof', NETWORK)
  })

  afterEach(async () => {
    await topology?.destroy()
  })

  test('without a secret: UPs naming addresses outside the subnets, or another service, never reach the proxy', async () => {
    // One router on the default subnets (its interface's /24), one told to
    // route 10.213.16.0/28 only: the attacker's own address is outside that.
    const wide = await RouterProcess.start(topology, 'proxy', { options: routerOptions({ name: 'wide' }) })
    const narrow = await RouterProcess.start(topology, 'proxy', {
      options: routerOptions({ name: 'narrow', subnets: ['10.213.16.0/28'] }),
    })
    expect(wide.subnets).toEqual(['10.213.16.0/24'])
    expect(narrow.subnets).toEqual(['10.213.16.0/28'])
    const attacker = await PacketSender.start(topology, 'attacker')
    const v1 = await instance(topology, 'v1', Date.now() - 60_000)
    await v1.up()
    for (const router of [wide, narrow]) await router.routes((s) => s.join() === '10.213.16.2 ready', 'v1 routed')

    const t = Date.now()
    await flood(attacker, [
      // The attacker's own address: inside the /24, outside the /28.
      statusMessage({ timestamp: t + 1, addresses: [ip('attacker')] }),
      // Another subnet altogether, and a public address.
      statusMessage({ timestamp: t + 2, addresses: ['10.213.17.5'] }),
      statusMessage({ timestamp: t + 3, addresses: ['192.0.2.1'] }),
      // Another service, at an address both routers would route.
      statusMessage({ timestamp: t + 4, service: 'worker', addresses: ['10.213.16.7'] }),
      // From outside the /28, naming an address inside it: see below.
      statusMessage({ timestamp: t + 5, addresses: ['10.213.16.5'] }),
    ])
    const rounds = 3
    // The last forgery of each batch is routed by both (see below): once it
    // is, the batch before it was heard, whatever the rules did with it.
    for (const router of [wide, narrow]) await router.routes((s) => s.includes('10.213.16.5 ready'), 'the last forgery heard')
    await sleep(3 * UP_PERIOD_MS) // the later rounds, a few reconciles and expiry ticks more

    expect([...narrow.addresses()].sort()).toEqual(['10.213.16.2', '10.213.16.5'])
    const refused = narrow.reports.filter((r) => r.event === 'change' && r.kind === 'refused').map((r) => r.line)
    expect(refused.some((line) => line.includes('from 10.213.16.66') && line.includes('[10.213.16.66]'))).toBe(true)
    expect([...wide.addresses()].sort()).toEqual(['10.213.16.2', '10.213.16.5', '10.213.16.66'])
    expect((await wide.stats()).outsideSubnets).toBeGreaterThanOrEqual(2 * rounds)
    expect((await narrow.stats()).outsideSubnets).toBeGreaterThanOrEqual(3 * rounds)
    for (const router of [wide, narrow]) expect((await router.stats()).otherService).toBeGreaterThanOrEqual(rounds)

    // The subnets are about the addresses an UP names, not about who sends
    // it: without a secret, the attacker outside the /28 still had an
    // address inside it (.5) routed, and its own (inside the /24) by the
    // router on the default subnets. Only the secret stops that (next test).
    expect(narrow.servers()).toContain('10.213.16.5 ready')
  }, 60_000)

  test('with a secret: unsigned, wrongly signed, tampered and replayed UPs never reach the proxy, and are counted', async () => {
    const env = { HANDOVER_SECRET: SECRET }
    const router = await RouterProcess.start(topology, 'proxy', { options: routerOptions(), env })
    const capture = await CaptureProcess.start(topology, 'attacker', ip('attacker'))
    const attacker = await PacketSender.start(topology, 'attacker')
    const v1 = await instance(topology, 'v1', Date.now() - 60_000, env)
    const v2 = await instance(topology, 'v2', Date.now() - 30_000, env)
    await v1.up()
    await v2.up()
    await router.routes((s) => s.join() === '10.213.16.2 ready,10.213.16.3 ready', 'both legit instances routed')

    // The attacker keeps a signed UP of v1, as heard on the wire; then v1
    // dies without a DOWN, and the router forgets it.
    const captured = await capture.heard(
      STATUS_PORT,
      (b) => b.length > 120 && b.readBigInt64BE(1) === BigInt(v1.startedAt),
      'a signed UP of v1',
    )
    v1.child.kill('SIGKILL')
    await router.routes((s) => s.join() === '10.213.16.3 ready', 'v1 gone after 3 UP periods of silence')
    const tablesBefore = router.tables().length

    const t = Date.now()
    // v1's own signed UP, its address changed: the MAC no longer matches.
    const tampered = Buffer.from(captured)
    tampered[75] = 66 // 10.213.16.2 → 10.213.16.66
    expect(addressesOf(tampered)).toEqual(['10.213.16.66'])
    const forgeries = [
      statusMessage({ timestamp: t + 1, addresses: ['10.213.16.5'] }),
      signedStatusMessage({ timestamp: t + 2, addresses: ['10.213.16.6'] }, 'a guessed secret'),
      tampered,
      // Byte for byte what v1 sent, once: it would bring the dead v1 back.
      captured,
    ]
    const rounds = 3
    await flood(attacker, forgeries, { rounds })
    const refused = forgeries.length * rounds
    // Until the router dealt with every forgery, one way (refused) or the other (routed).
    const changed = () => router.servers().join() !== '10.213.16.3 ready'
    await eventually(async () => changed() || (await router.stats()).refused >= refused, 'the router hearing the forgeries')
    await sleep(3 * UP_PERIOD_MS)

    for (const table of router.tables()) {
      for (const server of table.servers) expect(['10.213.16.2', '10.213.16.3']).toContain(server.address)
    }
    // The replay did not bring the dead v1 back. (v2 itself may leave a
    // table and come back: its UP comes at 3.1, 6.3, 10 s …, gaps longer
    // than this router's three short UP periods. That is not the point here.)
    for (const table of router.tables().slice(tablesBefore)) {
      for (const server of table.servers) expect(`${server.address} ${server.state}`).toBe('10.213.16.3 ready')
    }
    const stats = await router.stats()
    expect(stats.refused).toBe(refused)
    expect(stats.statusHeard).toBeGreaterThan(0) // the legit ones, signed
  }, 60_000)

  test("with a secret: forged DRAINEDs in the router's name do not end a drain before the proxy confirmed it", async () => {
    const env = { HANDOVER_SECRET: SECRET }
    const DRAIN_DELAY_MS = 1500
    const router = await RouterProcess.start(topology, 'proxy', { options: routerOptions(), env, drainDelayMs: DRAIN_DELAY_MS })
    const capture = await CaptureProcess.start(topology, 'attacker', ip('attacker'))
    const attacker = await PacketSender.start(topology, 'attacker')
    const v1 = await instance(topology, 'v1', Date.now() - 60_000, env)
    const v2 = await instance(topology, 'v2', Date.now() - 30_000, env)
    await v1.up()
    await v2.up()
    await router.routes((s) => s.length === 2, 'both legit instances routed')

    // The attacker learns the router's id from its signed HELLO, as heard on the wire.
    const hello = await capture.heard(
      ROUTER_PORT,
      (b) => b[0] === 0x03 && b[1] === ROUTER_KIND.hello,
      "the router's HELLO",
    )
    const routerId = hello.subarray(2, 10).toString('hex')
    expect(routerId).toBe(router.id)
    // The instance has heard the router too (HELLO comes every second).
    await sleep(1200)

    await v1.drain(10_000)
    await router.routes((s) => s.includes('10.213.16.2 drain'), "v1's drain handed to the proxy")
    const drainApplied = router.reports.find((r) => r.event === 'apply' && r.table.servers.some((s) => s.state === 'drain'))

    // While the proxy takes its time: DRAINED for v1 in the router's name.
    const drained = { kind: ROUTER_KIND.drained, routerId, timestamp: v1.startedAt }
    const tampered = Buffer.from(hello) // the real, signed HELLO made a DRAINED: the MAC no longer matches
    tampered[1] = ROUTER_KIND.drained
    tampered.writeBigInt64BE(BigInt(v1.startedAt), 10)
    const forgeries = [routerMessage(drained), routerMessage({ ...drained, secret: 'a guessed secret' }), tampered]
    await flood(attacker, forgeries, { rounds: 4, port: ROUTER_PORT })
    expect(v1.has('drained')).toBe(false)

    const { report, at } = await v1.drained()
    const confirmed = router.reports.find((r) => r.event === 'confirmed' && r.generation === drainApplied.table.generation)
    expect(confirmed).toBeDefined()
    expect(at).toBeGreaterThanOrEqual(confirmed.at)
    expect(confirmed.at - drainApplied.at).toBeGreaterThanOrEqual(DRAIN_DELAY_MS - 50)
    expect(report.acknowledged).toEqual([{ id: router.id, name: 'edge', address: ip('proxy') }])
    expect(report.timedOut).toEqual([])
    // The forgeries did arrive, and were refused (logged at debug, at most once a second).
    expect(v1.logs().some((line) => /dropped a malformed router packet from 10\.213\.16\.66/.test(line))).toBe(true)
  }, 60_000)
})
