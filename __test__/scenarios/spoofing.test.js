'use strict'
// Issue 3, scenario 4: with a shared secret, a forged "youngest possible"
// announcement from another host on the network shuts nothing down
// (SPEC §6, authentication); a replayed signed one counts as replayed; the
// legitimate, signed new instance still takes over.

const fs = require('node:fs')
const path = require('node:path')
const { bridgeNetwork } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, PacketSender, scratchFolder } = require('./support/peer-process')
const announcement = require('./support/announcements')

const SECRET = 'the secret of this app'
const NETWORK = { old: '10.213.4.2/24', new: '10.213.4.3/24', attacker: '10.213.4.66/24' }

/** Announcements claiming the youngest possible start, none signed with the app's secret. */
function forgeries() {
  const youngest = announcement.INT64_MAX
  return [
    announcement.plain(youngest),
    announcement.withBogusMac(announcement.extended(youngest)),
    announcement.signed(announcement.extended(youngest), 'a guessed secret'),
  ]
}

function legit(topology, folder, role, startedAt) {
  const options = { heartbeatIntervalMs: 300, handoverCompletePath: path.join(folder, `${role}-complete`) }
  return PeerProcess.start(topology, role, role, { impl: 'ours', startedAt, options, env: { HANDOVER_SECRET: SECRET } })
}

describeScenario('scenario: forged announcements on a network with a shared secret', () => {
  let topology
  let folder

  beforeEach(() => {
    topology = bridgeNetwork('spoof', NETWORK)
    folder = scratchFolder('spoof')
  })

  afterEach(async () => {
    await topology?.destroy()
    fs.rmSync(folder, { recursive: true, force: true })
  })

  test('forgeries and replays shut nothing down; the signed new instance still takes over', async () => {
    const old = await legit(topology, folder, 'old', Date.now() - 60_000)
    const young = await legit(topology, folder, 'new', Date.now())
    const attacker = await PacketSender.start(topology, 'attacker')
    await old.listen()
    await young.listen()
    await old.broadcast()

    const forged = forgeries()
    const rounds = 3
    for (let i = 0; i < rounds; i++) await attacker.send(forged)
    for (const peer of [old, young]) {
      const heard = await peer.hearsOthers(rounds * forged.length)
      expect(await peer.shuttingDown()).toBe(false)
      expect(heard.unauthenticated).toBe(rounds * forged.length)
    }

    // Signed with the secret but sent twice: the copy is refused. (Its stamp
    // is old, so the first one changes nothing either.)
    const signedOnce = announcement.signed(announcement.extended(0, { sequence: 1 }), SECRET)
    await attacker.send([signedOnce, signedOnce])
    const afterReplay = await old.hearsOthers(rounds * forged.length + 2)
    expect(afterReplay.older).toBe(1)
    expect(afterReplay.replayed).toBe(1)

    for (const peer of [old, young]) {
      expect(await peer.shuttingDown()).toBe(false)
      expect(peer.has('callback')).toBe(false)
      expect((await peer.stats()).accepted).toBe(0)
    }

    await young.broadcast()
    const handover = await old.handedOver()
    expect(handover.heardStartedAt).toBe(young.startedAt)
    expect(handover.from).toMatch(/^10\.213\.4\.3:/)
    expect(fs.readdirSync(folder)).toEqual(['old-complete'])
    expect(await young.shuttingDown()).toBe(false)
  }, 60_000)
})
