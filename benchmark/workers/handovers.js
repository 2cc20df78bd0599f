'use strict'
// Handovers inside one process: for each, a fresh old peer listens, a fresh
// younger peer calls startBroadcasting(), and we time from just before that
// call to the first line of the old peer's shutdown callback. In one process
// the callback cannot run before startBroadcasting() returns, so the time
// that call takes is recorded too (and, for reference, the constructor's).
//
// Every pair is younger than the pair before it, so a late packet from an
// earlier pair is an older announcement and can never set off a later one.

const { runMain } = require('./ipc.js')
const { adapter } = require('./impl.js')
const { withTimeout, deferred, hrtimeNs } = require('./util.js')

const TIMEOUT_MS = 12_000 // more than one heartbeat of the original

async function handover(peers, startedAtMs, port, settleMs) {
  const constructing = hrtimeNs()
  const old = peers.create(startedAtMs, port)
  const constructNs = Number(hrtimeNs() - constructing)
  const young = peers.create(startedAtMs + 1, port)
  const called = deferred()
  await peers.listen(old, async () => called.resolve(hrtimeNs()))
  // An old instance has listened for a while: let its socket be registered
  // and the event loop go idle before the younger one announces (settleMs 0:
  // back to back, with every thread still awake from the last handover).
  if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs))
  const start = hrtimeNs()
  peers.broadcast(young)
  const returned = hrtimeNs()
  try {
    const end = await withTimeout(called.promise, TIMEOUT_MS, 'shutdown callback')
    await withTimeout(peers.handedOver(old), TIMEOUT_MS, 'handover end')
    return { latencyNs: Number(end - start), broadcastCallNs: Number(returned - start), constructNs }
  } finally {
    peers.close(young)
    peers.close(old)
  }
}

async function main({ impl, count, basePort, ports, settleMs = 5 }) {
  const peers = adapter(impl)
  const base = Date.now() - 10 * 60_000
  const samples = []
  for (let i = 0; i < count; i++) samples.push(await handover(peers, base + 2 * i, basePort + (i % ports), settleMs))
  return {
    latenciesNs: samples.map((s) => s.latencyNs),
    broadcastCallsNs: samples.map((s) => s.broadcastCallNs),
    constructorCallsNs: samples.map((s) => s.constructNs),
  }
}

runMain(main)
