'use strict'
// An idle listening peer. Once it listens this worker says so and then does
// nothing at all (no timer, no polling) until told to stop: the parent reads
// its CPU time and wake-ups from /proc meanwhile (suites/idle.js).

const { runMain, send } = require('./ipc.js')
const { requireImpl, adapter } = require('./impl.js')
const { threadCount } = require('./util.js')

async function main({ impl, port, settleMs }) {
  const threadsBefore = threadCount()
  const peers = adapter(impl, requireImpl(impl))
  await peers.listen(peers.create(Date.now(), port), async () => {})
  await new Promise((resolve) => setTimeout(resolve, settleMs)) // start-up work done
  const threadsListening = threadCount()
  const stopped = new Promise((resolve) => process.once('message', resolve))
  await send({ type: 'idle' })
  await stopped
  return { threadsBefore, threadsListening }
}

runMain(main)
