'use strict'
// Scenario tests build network namespaces, which needs root: without it
// they are reported as skipped, with the reason, instead of failing.

const { topologiesAvailable } = require('../../../test-support/netns')

const AVAILABLE = topologiesAvailable()
const REASON = 'skipped: scenario tests need root to create private network namespaces (ip netns)'

/** `describe` when namespaces can be made; otherwise one skipped test that says why. */
function describeScenario(title, body) {
  if (AVAILABLE) return describe(title, body)
  // Jest lists no names of a file whose tests are all skipped: say it here.
  console.warn(`${title}: ${REASON}`)
  return describe(title, () => test.skip(REASON, () => {}))
}

module.exports = { describeScenario }
