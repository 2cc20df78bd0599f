'use strict'
// `handover status up|down`: send what an instance sends on the status
// channel, to see how a router or proxy that follows it reacts.

const { HandoverStatus } = require('../../index.js')
const { UsageError } = require('../errors')
const { resolveChannels, libraryOptions, describeChannel, pick, setting } = require('../settings')
const { parseTimestamp } = require('../timestamp')
const { firstSend, followSends, untilSignal } = require('../sending')
const { statusOptions, networkOptions, logOptions, helpFor } = require('./channel-options')

const help = `Usage: handover status up|down --service NAME --address A [--address B…] [options]

Sends a status message (UP or DOWN) for a service and the IPv4 addresses
it serves on, once, or with --repeat as an instance does (UP every 10 s,
DOWN every 100 ms) until Ctrl-C.

Options:
  --service NAME      service name, at most 63 bytes (${setting('serviceName').variable})
  --address A         an IPv4 address the service serves on; repeat for
                      more (at most 10). Here --address is not the group:
                      use --status-address for that.
  --timestamp MS      the instance's startedAt, ms since the epoch or a
                      date (default: now)
  --repeat            keep sending until Ctrl-C
${helpFor(statusOptions, networkOptions, logOptions)}
  -h, --help          this help

Example:
  handover status down --service api --address 10.114.102.3
`

const options = {
  ...statusOptions,
  ...networkOptions,
  ...logOptions,
  service: { type: 'string' },
  address: { type: 'string', multiple: true },
  timestamp: { type: 'string' },
  repeat: { type: 'boolean' },
}

const SENDERS = { UP: 'startBroadcastingServiceUp', DOWN: 'startBroadcastingServiceDown' }

async function run(flags, positionals) {
  const [state, ...extra] = positionals
  const status = (state || '').toUpperCase()
  if (!SENDERS[status] || extra.length > 0) {
    throw new UsageError(`status takes 'up' or 'down'; got ${positionals.length ? `'${positionals.join(' ')}'` : 'nothing'}`)
  }
  const service = pick(flags, 'service', 'serviceName')
  if (!service) throw new UsageError(`status needs --service NAME (or ${setting('serviceName').variable})`)
  const addresses = flags.address || []
  if (addresses.length === 0) {
    throw new UsageError('status needs at least one --address A: the IPv4 address the service serves on')
  }
  const startedAt = parseTimestamp(flags.timestamp)
  const [channel] = resolveChannels(['status'], flags)

  const sender = new HandoverStatus(startedAt, service.value, addresses, undefined, libraryOptions(channel))
  try {
    sender[SENDERS[status]]()
    await firstSend(sender)
    const what = `${status} service=${service.value} addresses=${addresses.join(',')}`
    process.stdout.write(`sent ${what} to ${describeChannel(channel)}\n`)
    if (!flags.repeat) return
    const follower = followSends(sender, () => {})
    await Promise.race([untilSignal(), follower.done])
    follower.stop()
    process.stdout.write(`sent ${sender.stats().sent} status messages in all\n`)
  } finally {
    sender.close()
  }
}

module.exports = { name: 'status', brief: 'send a status message (UP or DOWN) for a service', help, options, run }
