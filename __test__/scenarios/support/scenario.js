'use strict'
// Scenario tests build network topologies (test-support/netns.js): as
// root, or as any user where the kernel allows user namespaces. Where they
// cannot be built, the suite is reported as skipped, with the reason and
// how to allow it, instead of failing.

const { topologyProblem } = require('../../../test-support/netns')
const { describeUnless, isolationProblem } = require('../../../test-support/isolated')

/**
 * `describe` when topologies can be made, and the namespaces of `needs`
 * too ('mount' for a private /tmp, 'time' for a time namespace; see
 * isolated.js); otherwise one skipped test that says why.
 */
function describeScenario(title, body, needs = []) {
  const problem = topologyProblem() || (needs.length > 0 ? isolationProblem(...needs) : null)
  return describeUnless(problem, title, body)
}

module.exports = { describeScenario }
