'use strict'
// Handovers under packet loss: inside this process's private network
// namespace an nftables rule drops a share of the UDP packets to the
// benchmark's ports; `pairs` old/young pairs on distinct ports hand over
// at once, and each is timed from its startBroadcasting() to its callback.

const { execFileSync } = require('node:child_process')
const { runMain } = require('./ipc.js')
const { adapter } = require('./impl.js')
const { deferred, hrtimeNs } = require('./util.js')

const TABLE = 'handover_bench'

/** Drops `percent` % of UDP packets to the ports at random; counts both fates. */
function applyLoss(firstPort, lastPort, percent) {
  const ports = `${firstPort}-${lastPort}`
  const rules = `table ip ${TABLE} {
    chain output {
      type filter hook output priority 0; policy accept;
      udp dport ${ports} numgen random mod 100 < ${percent} counter drop
      udp dport ${ports} counter
    }
  }\n`
  execFileSync('nft', ['-f', '-'], { input: rules })
}

/** [dropped, passed] packet counts of the two rules. */
function lossCounters() {
  const listing = execFileSync('nft', ['list', 'table', 'ip', TABLE], { encoding: 'utf8' })
  return [...listing.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]))
}

async function main({ impl, pairs, basePort, lossPercent, timeoutMs }) {
  applyLoss(basePort, basePort + pairs - 1, lossPercent)
  const peers = adapter(impl)
  const base = Date.now() - 10 * 60_000
  const handovers = []
  for (let i = 0; i < pairs; i++) {
    const old = peers.create(base + 2 * i, basePort + i)
    const young = peers.create(base + 2 * i + 1, basePort + i)
    const called = deferred()
    await peers.listen(old, async () => called.resolve(hrtimeNs()))
    handovers.push({ young, called, start: null, latencyNs: null })
  }
  await new Promise((resolve) => setTimeout(resolve, 50)) // every old peer settled
  for (const h of handovers) {
    h.start = hrtimeNs()
    peers.broadcast(h.young)
    h.called.promise.then((end) => (h.latencyNs = Number(end - h.start)))
  }
  const all = Promise.all(handovers.map((h) => h.called.promise))
  await Promise.race([all, new Promise((resolve) => setTimeout(resolve, timeoutMs))])
  await new Promise(setImmediate) // let the last .then() record its latency
  const [dropped, passed] = lossCounters()
  return {
    latenciesNs: handovers.filter((h) => h.latencyNs !== null).map((h) => h.latencyNs),
    unfinished: handovers.filter((h) => h.latencyNs === null).length,
    dropped,
    passed,
  }
}

runMain(main)
