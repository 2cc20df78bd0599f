'use strict'
// Sends raw datagrams on behalf of a scenario test, from inside a namespace.
// One JSON line per batch on stdin: {"address","port","packets":[hex…],"multicastInterface"?}
// Answers {"event":"sent","count":n} once every packet of the batch left the socket.

const dgram = require('node:dgram')
const readline = require('node:readline')

const report = (event, extra = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\n')

const socket = dgram.createSocket('udp4')

function sendOne(packet, port, address) {
  return new Promise((resolve, reject) => socket.send(packet, port, address, (e) => (e ? reject(e) : resolve())))
}

async function sendBatch({ address, port, packets, multicastInterface }) {
  if (multicastInterface) socket.setMulticastInterface(multicastInterface)
  for (const hex of packets) await sendOne(Buffer.from(hex, 'hex'), port, address)
  report('sent', { count: packets.length })
}

socket.bind(0, () => {
  socket.setMulticastTTL(1)
  // One batch at a time, in order: the test paces the flood by batches.
  let queue = Promise.resolve()
  const input = readline.createInterface({ input: process.stdin })
  input.on('line', (line) => {
    if (!line.trim()) return
    queue = queue.then(() => sendBatch(JSON.parse(line))).catch((error) => report('error', { message: String(error) }))
  })
  input.on('close', () => queue.then(() => process.exit(0)))
  report('ready')
})
