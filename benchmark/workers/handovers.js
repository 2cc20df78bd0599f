'use strict'
// Handovers inside one process: for each, a fresh old peer listens, a fresh
// younger peer calls startBroadcasting(), and we time from just before that
// call to the first line of the old peer's shutdown callback.
//
// Every pair is younger than the pair before it, so a late packet from an
// earlier pair is an older announcement and can never set off a later one.

const { runMain } = require('./ipc.js')
const { adapter } = require('./impl.js')
const { withTimeout, deferred, hrtimeNs } = require('./util.js')

const TIMEOUT_MS = 12_000 // more than one heartbeat of the original
const SETTLE_MS = 5

async function handover(peers, startedAtMs, port) {
  const old = peers.create(startedAtMs, port)
  const young = peers.create(startedAtMs + 1, port)
  const called = deferred()
  await peers.listen(old, async () => called.resolve(hrtimeNs()))
  // An old instance has listened for a while: let its socket be registered
  // and the event loop go idle before the younger one announces.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
  const start = hrtimeNs()
  peers.broadcast(young)
  try {
    const end = await withTimeout(called.promise, TIMEOUT_MS, 'shutdown callback')
    await withTimeout(peers.handedOver(old), TIMEOUT_MS, 'handover end')
    return Number(end - start)
  } finally {
    peers.close(young)
    peers.close(old)
  }
}

async function main({ impl, count, basePort, ports }) {
  const peers = adapter(impl)
  const base = Date.now() - 10 * 60_000
  const latenciesNs = []
  for (let i = 0; i < count; i++) {
    latenciesNs.push(await handover(peers, base + 2 * i, basePort + (i % ports)))
  }
  return { latenciesNs }
}

runMain(main)
