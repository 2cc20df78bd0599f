'use strict'
// Issue 3, scenario 1: two services of one app (`api`, `worker`) on a
// docker-style bridge network, bridge network mode. Updating `api` must hand
// over from the old api container to the new one and leave `worker` alone
// (SPEC §5.6), also when the old api still runs the JS original.

const fs = require('node:fs')
const path = require('node:path')
const { bridgeNetwork } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, privateTmp, eventually, scratchFolder, sleep } = require('./support/peer-process')

const HEARTBEAT_MS = 300
const CONTAINERS = { 'api-old': '10.213.1.2/24', 'worker-old': '10.213.1.3/24', 'api-new': '10.213.1.4/24' }

/** Config of a container running ours, as balena would start it. */
function ours(service, startedAt, folder) {
  return {
    impl: 'ours',
    startedAt,
    env: { BALENA_SERVICE_NAME: service },
    options: { handoverCompletePath: path.join(folder, 'handover-complete'), heartbeatIntervalMs: HEARTBEAT_MS },
  }
}

/** Waits until the worker has heard a few more packets: api-old has stopped, so they are api-new's. */
async function workerHearsApiNew(worker) {
  const { received, own } = await worker.stats()
  const heard = await worker.hearsOthers(received - own + 2, 'the worker hearing api-new')
  expect(heard.otherService).toBeGreaterThan(0)
}

async function expectUntouched(peer, folder) {
  expect(await peer.shuttingDown()).toBe(false)
  expect(peer.has('callback')).toBe(false)
  expect(fs.readdirSync(folder)).toEqual([])
}

describeScenario('scenario: api and worker of one app on a docker bridge network', () => {
  let topology
  const folders = {}

  beforeEach(() => {
    topology = bridgeNetwork('apps', CONTAINERS)
    for (const role of Object.keys(CONTAINERS)) folders[role] = scratchFolder(role)
  })

  afterEach(async () => {
    await topology?.destroy()
    for (const folder of Object.values(folders)) fs.rmSync(folder, { recursive: true, force: true })
  })

  /** A container of ours for `service`, in the namespace called `role`. */
  const container = (role, service, startedAt) =>
    PeerProcess.start(topology, role, role, ours(service, startedAt, folders[role]))

  test('api-old hands over to api-new; worker-old hears api but stays', async () => {
    const t0 = Date.now() - 60_000
    // The worker is younger than api-old: without scoping, api-old would yield to it.
    const apiOld = await container('api-old', 'api', t0)
    const worker = await container('worker-old', 'worker', t0 + 1000)
    const apiNew = await container('api-new', 'api', Date.now())
    for (const peer of [apiOld, worker, apiNew]) await peer.listen()

    await apiOld.broadcast()
    await worker.broadcast()
    // The bridge carries the group between containers: each old one hears the other service.
    for (const peer of [apiOld, worker]) expect((await peer.hearsOthers(1)).otherService).toBeGreaterThan(0)
    expect(await apiOld.shuttingDown()).toBe(false)

    await apiNew.broadcast()
    const handover = await apiOld.handedOver()
    expect(handover.heardStartedAt).toBe(apiNew.startedAt)
    expect(handover.from).toMatch(/^10\.213\.1\.4:/)
    expect(handover.completeFile).toBe(path.join(folders['api-old'], 'handover-complete'))
    expect(fs.readFileSync(handover.completeFile, 'utf8')).toMatch(/^Shutting down at /)

    // api-old is silent now: what the worker keeps hearing is api-new.
    await workerHearsApiNew(worker)
    await expectUntouched(worker, folders['worker-old'])
    expect((await worker.stats()).accepted).toBe(0)
    await expectUntouched(apiNew, folders['api-new'])
    expect((await apiNew.stats()).otherService).toBeGreaterThan(0)
  }, 60_000)

  test('api-old running the JS original hands over to our api-new; our worker-old stays', async () => {
    const t0 = Date.now() - 60_000
    // The original honours every younger stamp and we honour the original's
    // unscoped ones, so before the update the old api and worker coexist
    // only with equal stamps (a worker started by the same release, same ms).
    const apiOld = await PeerProcess.start(
      topology,
      'api-old',
      'api-old (original)',
      { impl: 'original', startedAt: t0, env: { BALENA_SERVICE_NAME: 'api' } },
      privateTmp(folders['api-old']),
    )
    const worker = await container('worker-old', 'worker', t0)
    const apiNew = await container('api-new', 'api', Date.now())
    for (const peer of [apiOld, worker, apiNew]) await peer.listen()

    await apiOld.broadcast()
    await worker.broadcast()
    // The worker hears the original's announcement and takes it as not younger.
    expect((await worker.hearsOthers(1, 'the worker hearing the original api-old')).older).toBeGreaterThan(0)
    await sleep(HEARTBEAT_MS)
    expect(apiOld.has('callback')).toBe(false)

    await apiNew.broadcast()
    const callback = await apiOld.callbackRan()
    expect(callback.shuttingDown).toBe(true)
    const completeFile = path.join(folders['api-old'], 'balena', 'handover-complete')
    // The original creates the file, then writes its text: wait for the text.
    const written = () => fs.existsSync(completeFile) && fs.readFileSync(completeFile, 'utf8') !== ''
    await eventually(written, 'the original writing /tmp/balena/handover-complete')
    expect(fs.readFileSync(completeFile, 'utf8')).toMatch(/^Shutting down at /)

    await workerHearsApiNew(worker)
    await expectUntouched(worker, folders['worker-old'])
    await expectUntouched(apiNew, folders['api-new'])
  }, 60_000)
}, ['mount']) // the original's private /tmp
