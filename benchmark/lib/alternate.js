'use strict'
// Side by side: run each implementation once per round, flipping the order
// every round, so that drift (caches, thermal, other load) hits both alike.

/** Calls run(impl, round) for every impl in every round; returns { impl: [results] }. */
async function alternate(impls, rounds, run) {
  const results = Object.fromEntries(impls.map((impl) => [impl, []]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? impls : [...impls].reverse()
    for (const impl of order) results[impl].push(await run(impl, round))
  }
  return results
}

module.exports = { alternate }
