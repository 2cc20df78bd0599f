'use strict'
// `handover announce`: act as a newly started instance, so that the running
// one hands over. Only announces: it never listens, so it can never write a
// handover-complete file itself.

const { HandoverPeer } = require('../../index.js')
const { wholeNumber } = require('../errors')
const { resolveChannels, libraryOptions, describeChannel, pick, setting } = require('../settings')
const { parseTimestamp } = require('../timestamp')
const { isoDate } = require('../format')
const { firstSend, followSends, untilSignal } = require('../sending')
const { handoverOptions, networkOptions, logOptions, helpFor, sourceOf } = require('./channel-options')

const help = `Usage: handover announce [--service NAME] [--timestamp MS] [--repeat] [options]

Announces a startup timestamp on the handover channel, as a new instance
does once it is ready: every running instance of the service that started
earlier hands over. Sends one announcement and exits, or with --repeat keeps
announcing until Ctrl-C.

Options:
  --service NAME      scope: only instances of this service hand over
                      (${setting('serviceName').variable}; unscoped when neither is set,
                      as the original handover-lib announces)
  --timestamp MS      startedAt, ms since the epoch or a date (default: now)
  --secret S          sign the announcement (${setting('secret').variable})
  --repeat            keep announcing until Ctrl-C
  --interval MS       with --repeat: time between announcements
                      (${sourceOf('heartbeatIntervalMs')})
${helpFor(handoverOptions, networkOptions, logOptions)}
  -h, --help          this help

Example:
  handover announce --service api --network-mode host --interface supervisor0
`

const options = {
  ...handoverOptions,
  ...networkOptions,
  ...logOptions,
  service: { type: 'string' },
  timestamp: { type: 'string' },
  secret: { type: 'string' },
  repeat: { type: 'boolean' },
  interval: { type: 'string' },
}

function interval(value) {
  if (value === undefined) return undefined
  return wholeNumber(value, '--interval', { what: 'a whole number of milliseconds' })
}

async function run(flags) {
  const startedAt = parseTimestamp(flags.timestamp)
  const [channel] = resolveChannels(['handover'], flags)
  const options = libraryOptions(channel)
  if (flags.service !== undefined) options.serviceName = flags.service
  if (flags.secret !== undefined) options.secret = flags.secret
  if (flags.interval !== undefined) options.heartbeatIntervalMs = interval(flags.interval)

  const peer = new HandoverPeer(startedAt, undefined, options)
  const service = pick(flags, 'service', 'serviceName')
  const signed = pick(flags, 'secret', 'secret') ? ' signed' : ''
  const what = [
    `startedAt ${isoDate(startedAt.valueOf())} (${startedAt.valueOf()} ms)`,
    service ? `service=${service.value}` : 'unscoped',
    `instance=${peer.instanceId}${signed}`,
  ].join(' ')
  const report = (count) => process.stdout.write(`announced #${count} ${what} to ${describeChannel(channel)}\n`)
  try {
    peer.startBroadcasting()
    if (!flags.repeat) {
      await firstSend(peer)
      report(1)
      return
    }
    const follower = followSends(peer, report)
    await Promise.race([untilSignal(), follower.done])
    follower.stop()
  } finally {
    peer.close()
  }
}

module.exports = { name: 'announce', brief: 'announce as a new instance, so the running one hands over', help, options, run }
