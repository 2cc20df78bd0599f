'use strict'
// Issue 3, scenario 2: a fleet of two devices on one LAN, the app in host
// network mode. Each device has its own supervisor0 bridge, with the same
// address on both, as balenaOS sets it up. An update on device A must hand
// over on A only (SPEC §4, §5.5): ours joins and sends on supervisor0, so
// nothing reaches the LAN. The JS original, told the same, joins and sends
// on the default interface: the control test shows this topology would
// catch that leak.

const fs = require('node:fs')
const path = require('node:path')
const { fleetLan } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, privateTmp, eventually, scratchFolder, sleep } = require('./support/peer-process')

const HEARTBEAT_MS = 300
const DEVICES = { devA: '10.213.2.10/24', devB: '10.213.2.11/24' }
const HOST_MODE = { HANDOVER_NETWORK_MODE: 'host' } // NETWORK_INTERFACE stays the default, supervisor0

describeScenario('scenario: a fleet of two devices on one LAN, host network mode', () => {
  let topology
  let folder

  beforeEach(() => {
    topology = fleetLan('fleet', DEVICES)
    folder = scratchFolder('fleet')
  })

  afterEach(async () => {
    await topology?.destroy()
    fs.rmSync(folder, { recursive: true, force: true })
  })

  function ours(device, label, startedAt) {
    const config = { impl: 'ours', startedAt, env: HOST_MODE, options: { heartbeatIntervalMs: HEARTBEAT_MS } }
    config.options.handoverCompletePath = path.join(folder, `${label}-complete`)
    return PeerProcess.start(topology, device, label, config)
  }

  test("device A's update hands over on A; device B's older instance hears nothing of it", async () => {
    const t0 = Date.now() - 60_000
    const aOld = await ours('devA', 'A-old', t0)
    // Older than A's new instance: a leak from A would shut it down.
    const b = await ours('devB', 'B', t0 + 1000)
    const aNew = await ours('devA', 'A-new', Date.now())
    for (const peer of [aOld, b, aNew]) await peer.listen()

    await b.broadcast()
    await aOld.broadcast()
    // B hears itself on its supervisor0, so its listener works.
    await eventually(async () => (await b.stats()).own > 0, 'B hearing its own announcement')

    await aNew.broadcast()
    const handover = await aOld.handedOver()
    expect(handover.heardStartedAt).toBe(aNew.startedAt)
    expect(handover.completeFile).toBe(path.join(folder, 'A-old-complete'))

    // A-old is silent now; B goes on announcing. Over a few heartbeats a
    // leak either way would show: B would hear A-new, A-new would count B's
    // announcements as older ones.
    const olderHeardByANew = (await aNew.stats()).older
    await sleep(5 * HEARTBEAT_MS)
    expect(await aNew.shuttingDown()).toBe(false)
    expect((await aNew.stats()).older).toBe(olderHeardByANew)
    expect(await b.shuttingDown()).toBe(false)
    expect(b.has('callback')).toBe(false)
    const heardByB = await b.stats()
    expect(heardByB.received).toBe(heardByB.own)
  }, 60_000)

  test('control: the JS original in host mode leaks across the LAN and shuts device B down', async () => {
    const t0 = Date.now() - 60_000
    const original = (device, label, startedAt) => {
      const config = { impl: 'original', startedAt, env: HOST_MODE }
      return PeerProcess.start(topology, device, label, config, privateTmp(path.join(folder, device)))
    }
    const b = await original('devB', 'B (original)', t0)
    const aNew = await original('devA', 'A-new (original)', Date.now())
    await b.listen()
    await b.joined()
    await aNew.broadcast()
    const callback = await b.callbackRan()
    expect(callback.shuttingDown).toBe(true)
  }, 60_000)
}, ['mount']) // the original's private /tmp
