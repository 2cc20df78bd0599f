'use strict'
// `handover watch`: one line per packet heard on the handover and status
// channels. Plain Node sockets, not a HandoverPeer: a watcher must never
// take part in a handover (a peer would write the complete file).

const dgram = require('node:dgram')
const { describePacket } = require('../../index.js')
const { Failure, EXIT, wholeNumber } = require('../errors')
const { resolveChannels, describeChannel } = require('../settings')
const { summary, asJson, localTime } = require('../format')
const { handoverOptions, statusOptions, networkOptions, helpFor } = require('./channel-options')

const help = `Usage: handover watch [options]

Prints one line per packet heard on the handover and status channels:
local time, sender, channel, and what the packet says. Runs until Ctrl-C.

Options:
${helpFor(handoverOptions, statusOptions, networkOptions)}
  --count N           exit after N packets
  --timeout MS        exit after MS milliseconds (exit code 1 if --count was
                      given and not reached)
  --json              one JSON object per line
  -h, --help          this help

Example (a device in host mode):
  handover watch --network-mode host --interface supervisor0
`

const options = {
  ...handoverOptions,
  ...statusOptions,
  ...networkOptions,
  count: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
}

function positiveInteger(value, flag) {
  if (value === undefined) return undefined
  return wholeNumber(value, `--${flag}`, { what: 'a whole number of at least 1', min: 1 })
}

/** Channels that share a port share a socket: two sockets on one port would print each packet twice. */
function groupByPort(channels) {
  const byPort = new Map()
  for (const channel of channels) byPort.set(channel.port, [...(byPort.get(channel.port) || []), channel])
  return [...byPort.values()]
}

function bindFailure(error, channels) {
  const port = `port ${channels[0].port} (${channels.map((c) => c.name).join(' and ')} channel)`
  if (error.code === 'EADDRINUSE') {
    return new Failure(
      `${port} is in use by a program that does not share it (SO_REUSEADDR); stop that program or choose another port`,
    )
  }
  if (error.code === 'EACCES') return new Failure(`not allowed to listen on ${port}: ${error.message}`)
  return new Failure(`cannot listen on ${port}: ${error.message}`)
}

/** Binds one port on all addresses and joins each channel's group on the chosen interface. */
function listen(channels, onPacket) {
  const { port } = channels[0]
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  return new Promise((resolve, reject) => {
    socket.once('error', (error) => reject(bindFailure(error, channels)))
    socket.bind(port, () => {
      socket.removeAllListeners('error')
      const groups = new Set(channels.filter((c) => c.isMulticast).map((c) => c.address))
      const on = channels[0].interface
      for (const group of groups) {
        try {
          if (on) socket.addMembership(group, on.address)
          else socket.addMembership(group)
        } catch (error) {
          socket.close()
          const where = on ? `on ${on.name} (${on.address})` : 'on the default interface'
          return reject(new Failure(`cannot join group ${group} ${where}: ${error.message}`))
        }
      }
      socket.on('message', (bytes, from) => onPacket(bytes, from, channels))
      resolve(socket)
    })
  })
}

/** Which channel a packet belongs to: by its kind, else by the port it came in on. */
function channelOf(packet, channels) {
  if (packet.kind === 'announcement') return 'handover'
  if (packet.kind === 'status') return 'status'
  return channels.map((c) => c.name).join('/')
}

async function run(flags) {
  const count = positiveInteger(flags.count, 'count')
  const timeout = positiveInteger(flags.timeout, 'timeout')
  const channels = resolveChannels(['handover', 'status'], flags)

  let heard = 0
  let finish, fail
  const finished = new Promise((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  const print = (bytes, from, portChannels) => {
    if (count !== undefined && heard >= count) return
    heard += 1
    const packet = describePacket(bytes)
    const now = new Date()
    const source = `${from.address}:${from.port}`
    const channel = channelOf(packet, portChannels)
    process.stdout.write(
      flags.json
        ? JSON.stringify(asJson(packet, { time: now.toISOString(), from: source, channel })) + '\n'
        : `${localTime(now)}  ${source.padEnd(21)}  ${channel.padEnd(8)}  ${summary(packet)}\n`,
    )
    if (heard === count) finish(EXIT.ok)
  }

  const sockets = []
  try {
    for (const group of groupByPort(channels)) sockets.push(await listen(group, print))
  } catch (error) {
    for (const socket of sockets) socket.close()
    throw error
  }
  const stop = () => finish(EXIT.ok)
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const timer = timeout && setTimeout(() => {
    if (count === undefined) return finish(EXIT.ok)
    fail(new Failure(`timed out after ${timeout} ms having heard ${heard} of ${count} packets`))
  }, timeout)
  // Said last: a script that waits for this line may signal us at once.
  const [handover, status] = channels.map(describeChannel)
  process.stderr.write(`watching handover ${handover} and status ${status}; Ctrl-C to stop\n`)

  try {
    return await finished
  } finally {
    clearTimeout(timer)
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    for (const socket of sockets) socket.close()
  }
}

module.exports = { name: 'watch', brief: 'print the packets on the handover and status channels', help, options, run }
