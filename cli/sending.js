'use strict'
// Waiting on a library object that sends in the background: its counters
// say when a packet went out, and signals say when the user wants to stop.

const { Failure } = require('./errors')

const POLL_MS = 5

/**
 * Calls `onSent(total)` whenever the sender's `sent` counter grows, until
 * `stop()`; rejects when a send fails or when nothing went out in time.
 */
function followSends(sender, onSent, { firstWithinMs = 2000 } = {}) {
  let reported = 0
  let timer
  const started = Date.now()
  const done = new Promise((resolve, reject) => {
    timer = setInterval(() => {
      const { sent, sendErrors } = sender.stats()
      if (sendErrors > 0) return reject(new Failure(`could not send (${sendErrors} failed); the log above says why`))
      if (sent > reported) {
        reported = sent
        onSent(sent)
      } else if (reported === 0 && Date.now() - started > firstWithinMs) {
        reject(new Failure(`nothing was sent within ${firstWithinMs} ms`))
      }
    }, POLL_MS)
  })
  const stop = () => clearInterval(timer)
  return { done: done.finally(stop), stop }
}

/** Resolves with the first packet sent. */
async function firstSend(sender) {
  let resolveSent
  const sent = new Promise((resolve) => {
    resolveSent = resolve
  })
  const follower = followSends(sender, resolveSent)
  try {
    await Promise.race([sent, follower.done])
  } finally {
    follower.stop()
  }
}

/** Resolves on Ctrl-C or SIGTERM. */
function untilSignal() {
  return new Promise((resolve) => {
    const stop = () => {
      process.removeListener('SIGINT', stop)
      process.removeListener('SIGTERM', stop)
      resolve()
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
}

module.exports = { followSends, firstSend, untilSignal }
