'use strict'
// Issue 3, scenario 6: 10 000 random datagrams on the handover port (SPEC
// §5.1: the original crashes on the first stray packet). Ours drops and
// counts them, keeps running, and still hands over to a real younger
// instance afterwards.

const fs = require('node:fs')
const path = require('node:path')
const { loopbackHost } = require('../../test-support/netns')
const { describeScenario } = require('./support/scenario')
const { PeerProcess, PacketSender, eventually, scratchFolder } = require('./support/peer-process')
const { FIELD } = require('./support/announcements')

const PACKETS = 10_000
/** Packets per batch: small enough that the listening socket's buffer never overflows. */
const BATCH = 100
const SEED = 0x5eed1234

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function randomSource(seed) {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (below) => Math.floor(next() * below)
  const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(256)))
  return { next, int, bytes }
}

/** Type-length-value fields, of our types and others, with lengths that may be wrong or run past the end. */
function randomFields(random) {
  const types = [FIELD.service, FIELD.instance, FIELD.bootClock, FIELD.freshness, FIELD.mac, random.int(256)]
  const parts = []
  for (let n = random.int(5); n > 0; n--) {
    const length = random.int(64)
    const truncated = random.next() < 0.2
    parts.push(Buffer.from([types[random.int(types.length)], length]))
    parts.push(random.bytes(truncated ? random.int(length + 1) : length))
  }
  return Buffer.concat(parts)
}

/** Random bytes; some start as an announcement and are cut short; some carry our extension with random fields. */
function randomBytes(random) {
  const kind = random.next()
  if (kind < 0.4) return random.bytes(random.int(301))
  if (kind < 0.6) return Buffer.concat([Buffer.from([0x01]), random.bytes(random.int(8))])
  const head = Buffer.concat([Buffer.from([0x01]), random.bytes(8), Buffer.from('HO', 'latin1'), random.bytes(1)])
  return Buffer.concat([head, randomFields(random)]).subarray(0, 300)
}

/**
 * One random packet. Whatever could decode as an announcement gets a
 * negative (long past) start, so no packet may make the peer hand over.
 */
function randomPacket(random) {
  const packet = randomBytes(random)
  if (packet.length >= 9 && packet[0] === 0x01) packet[1] |= 0x80
  return packet
}

/** Too short, or not version 1: malformed whatever the decoder does with the rest. */
function surelyMalformed(packet) {
  return packet.length < 9 || packet[0] !== 0x01
}

describeScenario('scenario: random datagrams on the handover port', () => {
  let topology
  let folder

  beforeEach(() => {
    topology = loopbackHost('fuzz')
    folder = scratchFolder('fuzz')
  })

  afterEach(async () => {
    await topology?.destroy()
    fs.rmSync(folder, { recursive: true, force: true })
  })

  function start(label, startedAt) {
    const options = { handoverCompletePath: path.join(folder, `${label}-complete`), logLevel: 'debug' }
    const env = { BALENA_SERVICE_NAME: 'api' }
    return PeerProcess.start(topology, 'host', label, { impl: 'ours', startedAt, options, env })
  }

  /** Sends every packet, a batch at a time, each batch once the peer has counted the last. */
  async function flood(sender, peer, packets) {
    for (let at = 0; at < packets.length; at += BATCH) {
      await sender.send(packets.slice(at, at + BATCH))
      const sent = Math.min(at + BATCH, packets.length)
      // A peer that died fails the stats request at once, with its stderr.
      await eventually(async () => (await peer.stats()).received >= sent, `the peer counting ${sent} packets`)
    }
  }

  test('10 000 random packets are dropped and counted; a real younger instance still takes over', async () => {
    const victim = await start('victim', Date.now() - 60_000)
    const sender = await PacketSender.start(topology, 'host')
    await victim.listen()

    const random = randomSource(SEED)
    const packets = Array.from({ length: PACKETS }, () => randomPacket(random))
    await flood(sender, victim, packets)

    expect(victim.running).toBe(true)
    const stats = await victim.stats()
    expect(stats.received).toBeGreaterThanOrEqual(PACKETS)
    expect(stats.malformed).toBeGreaterThanOrEqual(packets.filter(surelyMalformed).length)
    expect(stats.accepted).toBe(0)
    const { received, accepted, malformed, older, otherService, unauthenticated, replayed, own } = stats
    expect(accepted + malformed + older + otherService + unauthenticated + replayed + own).toBe(received)
    expect(await victim.shuttingDown()).toBe(false)

    const young = await start('young', Date.now())
    await young.broadcast()
    const handover = await victim.handedOver()
    expect(handover.heardStartedAt).toBe(young.startedAt)
    expect(handover.completeFile).toBe(path.join(folder, 'victim-complete'))
  }, 120_000)
})
