'use strict'
// Handovers inside one process: for each, a fresh old peer listens, a fresh
// younger peer calls startBroadcasting(), and we time from just before that
// call to the first line of the old peer's shutdown callback. In one process
// the callback cannot run before startBroadcasting() returns, so the time
// that call takes is recorded too (and, for reference, the constructor's).
//
// Every pair is younger than the pair before it, so a late packet from an
// earlier pair is an older announcement and can never set off a later one.
//
// Given `impls` (ours and the floor) instead of `impl`, the implementations
// take turns handover by handover in this one process, who goes first
// flipping every turn, so that drift hits them alike; the samples come back
// per implementation.

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

function figures(samples) {
  return {
    latenciesNs: samples.map((s) => s.latencyNs),
    broadcastCallsNs: samples.map((s) => s.broadcastCallNs),
    constructorCallsNs: samples.map((s) => s.constructNs),
  }
}

/**
 * `count` handovers per implementation: { latenciesNs, … }, or for `impls`
 * { byImpl: { name: { latenciesNs, … } } }.
 */
async function main({ impl, impls, count, basePort, ports, settleMs = 5 }) {
  const names = impls || [impl]
  const peers = Object.fromEntries(names.map((name) => [name, adapter(name)]))
  const samples = Object.fromEntries(names.map((name) => [name, []]))
  const base = Date.now() - 10 * 60_000
  let trial = 0
  for (let i = 0; i < count; i++) {
    for (const name of i % 2 === 0 ? names : [...names].reverse()) {
      samples[name].push(await handover(peers[name], base + 2 * trial, basePort + (trial % ports), settleMs))
      trial++
    }
  }
  if (!impls) return figures(samples[impl])
  return { byImpl: Object.fromEntries(names.map((name) => [name, figures(samples[name])])) }
}

runMain(main)
