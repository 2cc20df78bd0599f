'use strict'
// Issue 3, scenario 3: three generations of one service on one host (two
// updates in quick succession). Every older instance hands over exactly
// once and only the newest survives.

const fs = require('node:fs')
const path = require('node:path')
const { loopbackHost } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, scratchFolder, sleep } = require('./support/peer-process')

const HEARTBEAT_MS = 300

/** Each generation is a container of its own, with its own complete file. */
function start(topology, folder, label, startedAt) {
  return PeerProcess.start(topology, 'host', label, {
    impl: 'ours',
    startedAt,
    env: { BALENA_SERVICE_NAME: 'api', BALENA_SERVICE_HANDOVER_COMPLETE_PATH: path.join(folder, `${label}-complete`) },
    options: { heartbeatIntervalMs: HEARTBEAT_MS },
  })
}

async function generations(topology, folder) {
  const t0 = Date.now() - 60_000
  const oldest = await start(topology, folder, 'oldest', t0)
  const middle = await start(topology, folder, 'middle', t0 + 1000)
  const newest = await start(topology, folder, 'newest', t0 + 2000)
  for (const peer of [oldest, middle, newest]) await peer.listen()
  return { oldest, middle, newest }
}

async function expectSurvivor(newest, folder) {
  // A few heartbeats for a late, wrong handover to show.
  await sleep(4 * HEARTBEAT_MS)
  expect(await newest.shuttingDown()).toBe(false)
  expect(newest.has('callback')).toBe(false)
  expect((await newest.stats()).accepted).toBe(0)
  expect(fs.readdirSync(folder).sort()).toEqual(['middle-complete', 'oldest-complete'])
}

describeScenario('scenario: three generations of one service on one host', () => {
  let topology
  let folder

  beforeEach(() => {
    topology = loopbackHost('generations')
    folder = scratchFolder('generations')
  })

  afterEach(async () => {
    await topology?.destroy()
    fs.rmSync(folder, { recursive: true, force: true })
  })

  test('the oldest (serving) and the middle (still starting) both hand over to the newest', async () => {
    const { oldest, middle, newest } = await generations(topology, folder)
    await oldest.broadcast()
    // The middle one never got ready to serve before the newest did.
    await newest.broadcast()

    const [fromOldest, fromMiddle] = await Promise.all([oldest.handedOver(), middle.handedOver()])
    expect(fromOldest.heardStartedAt).toBe(newest.startedAt)
    expect(fromMiddle.heardStartedAt).toBe(newest.startedAt)
    await expectSurvivor(newest, folder)
    expect(oldest.reports.filter((r) => r.event === 'callback')).toHaveLength(1)
    expect(middle.reports.filter((r) => r.event === 'callback')).toHaveLength(1)
  }, 60_000)

  test('in a cascade (oldest to middle, then middle to newest) only the newest survives', async () => {
    const { oldest, middle, newest } = await generations(topology, folder)
    await oldest.broadcast()
    await middle.broadcast()
    const fromOldest = await oldest.handedOver()
    expect(fromOldest.heardStartedAt).toBe(middle.startedAt)
    expect(await middle.shuttingDown()).toBe(false)

    await newest.broadcast()
    const fromMiddle = await middle.handedOver()
    expect(fromMiddle.heardStartedAt).toBe(newest.startedAt)
    await expectSurvivor(newest, folder)
    expect(oldest.reports.filter((r) => r.event === 'callback')).toHaveLength(1)
  }, 60_000)
})
