'use strict'
// One side of handovers between two long-lived processes (workers/warm-pairs.js):
// told what to do over IPC, it makes a fresh peer of `impl` per handover,
// as the old side (listen) or the young side (broadcast), and stamps the
// moments that count with process.hrtime.bigint() (CLOCK_MONOTONIC, one
// clock for every process on the machine). Stdout is not read: our peers log there.

const { adapter } = require('./impl.js')
const { hrtimeNs } = require('./util.js')

const peers = adapter(process.argv[2])
let peer = null

const reply = (message) => process.send(message)

const COMMANDS = {
  /** A fresh old peer listens; its callback reports when it ran. */
  async listen({ startedAt, port }) {
    peer = peers.create(startedAt, port)
    await peers.listen(peer, async () => reply({ event: 'callback', atNs: String(hrtimeNs()) }))
    reply({ event: 'listening' })
  },
  /** A fresh young peer, ready to broadcast. */
  prepare({ startedAt, port }) {
    peer = peers.create(startedAt, port)
    reply({ event: 'prepared' })
  },
  broadcast() {
    const startNs = hrtimeNs()
    peers.broadcast(peer)
    const returnedNs = hrtimeNs()
    reply({ event: 'sent', startNs: String(startNs), callNs: String(returnedNs - startNs) })
  },
  /** Once an old peer has handed over (a young one at once): closes it. */
  async close({ handedOver }) {
    if (handedOver) await peers.handedOver(peer)
    peers.close(peer)
    peer = null
    reply({ event: 'closed' })
  },
}

process.on('message', (message) => {
  Promise.resolve(COMMANDS[message.command](message)).catch((error) => reply({ event: 'error', message: error.stack }))
})
// No side outlives the worker that started it.
process.on('disconnect', () => process.exit(0))
reply({ event: 'ready' })
