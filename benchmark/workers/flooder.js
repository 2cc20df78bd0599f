'use strict'
// Fallback flooder when no C compiler is around: same arguments and output
// as benchmark/flooder.c, but a Node dgram loop, which may fall short of the
// asked rate; the rate achieved is what gets reported.
//
//   node flooder.js GROUP PORT older|malformed RATE DURATION_MS OLDER_THAN_MS

const dgram = require('node:dgram')
const { pool } = require('./packets.js')

const BURST = 64

function flood(socket, packets, rate, durationNs) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint()
    let sent = 0
    const tick = () => {
      const elapsed = Number(process.hrtime.bigint() - start)
      if (elapsed >= durationNs) return resolve({ sent, elapsedNs: elapsed, errors: 0 })
      const due = Math.min((elapsed / 1e9) * rate, sent + BURST * 16)
      while (sent < due) socket.send(packets[sent++ % packets.length])
      setImmediate(tick) // let libuv flush and run send callbacks
    }
    tick()
  })
}

async function main() {
  const [group, port, kind, rate, durationMs, olderThanMs] = process.argv.slice(2)
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, resolve))
  socket.setMulticastInterface('127.0.0.1') // pinned to loopback
  socket.setMulticastTTL(1)
  await new Promise((resolve) => socket.connect(Number(port), group, resolve))
  const result = await flood(socket, pool(kind, Number(olderThanMs)), Number(rate), Number(durationMs) * 1e6)
  process.stdout.write(JSON.stringify(result) + '\n')
  socket.close()
}

main()
