'use strict'
// Issue 3, scenario 5: NTP stepped the wall clock back between the start of
// the old instance and the start of the new one (SPEC §5.10). By wall clock
// the new instance looks older; on the boot clock, which steps do not move,
// it is younger. Peers of ours on one boot go by the boot clock: the old
// instance hands over and the new one survives.
//
// The step is simulated: the old instance's startedAt is a minute ahead of
// the wall clock (its clock was ahead when it started), and the new one runs
// in a time namespace whose CLOCK_BOOTTIME is an hour ahead (it started
// later in this boot). Both share the kernel, hence the boot id.

const fs = require('node:fs')
const path = require('node:path')
const { loopbackHost } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, bootClockAhead, scratchFolder, sleep } = require('./support/peer-process')

const HEARTBEAT_MS = 300
const WALL_CLOCK_AHEAD_MS = 60_000
const LATER_IN_BOOT_S = 3600

describeScenario('scenario: the wall clock stepped back between two instances on one boot', () => {
  let topology
  let folder

  beforeEach(() => {
    topology = loopbackHost('clock')
    folder = scratchFolder('clock')
  })

  afterEach(async () => {
    await topology?.destroy()
    fs.rmSync(folder, { recursive: true, force: true })
  })

  function config(label, startedAt) {
    const options = { heartbeatIntervalMs: HEARTBEAT_MS, handoverCompletePath: path.join(folder, `${label}-complete`) }
    return { impl: 'ours', startedAt, options, env: { BALENA_SERVICE_NAME: 'api' } }
  }

  test('the old instance hands over although its wall-clock stamp is later; the new one survives', async () => {
    const now = Date.now()
    const old = await PeerProcess.start(topology, 'host', 'old', config('old', now + WALL_CLOCK_AHEAD_MS))
    const young = await PeerProcess.start(topology, 'host', 'new', config('new', now), bootClockAhead(LATER_IN_BOOT_S))
    await old.listen()
    await young.listen()

    // By wall clock the old one is younger: the new one must not yield to it.
    await old.broadcast()
    const heard = await young.hearsOthers(1)
    expect(heard.accepted).toBe(0)
    expect(heard.older).toBeGreaterThan(0)
    expect(await young.shuttingDown()).toBe(false)

    await young.broadcast()
    const handover = await old.handedOver()
    expect(handover.heardStartedAt).toBe(young.startedAt)
    expect(handover.heardStartedAt).toBeLessThan(old.startedAt)
    expect(handover.completeFile).toBe(path.join(folder, 'old-complete'))

    await sleep(4 * HEARTBEAT_MS)
    expect(await young.shuttingDown()).toBe(false)
    expect(young.has('callback')).toBe(false)
    expect(fs.readdirSync(folder)).toEqual(['old-complete'])
  }, 60_000)
}, ['time']) // the new instance's boot clock
