'use strict'
// `handover decode HEX…`: what a captured packet says.

const { describePacket } = require('../../index.js')
const { UsageError, EXIT } = require('../errors')
const { summary, details, asJson } = require('../format')

const help = `Usage: handover decode [--json] HEX [HEX…]

Decodes packets of either channel given as hex (spaces, colons and a 0x
prefix are ignored), as captured by tcpdump or printed by 'handover watch'.

Options:
  --json        one JSON object per packet
  -h, --help    this help

Exit status:
  0  every packet is a valid announcement or status message
  1  at least one is not a valid packet (each is still described)
  2  usage error, such as text that is not hex

Example:
  handover decode 010000018bcfe56800
`

const options = {
  json: { type: 'boolean' },
}

function parseHex(text) {
  const digits = text.replace(/^0x/i, '').replace(/[\s:]/g, '')
  if (!/^(?:[0-9a-f]{2})+$/i.test(digits)) {
    throw new UsageError(`'${text}' is not a packet in hex: expected pairs of hex digits, like 010000018bcfe56800`)
  }
  return Buffer.from(digits, 'hex')
}

async function run(flags, positionals) {
  if (positionals.length === 0) {
    throw new UsageError('decode needs a packet in hex, like: handover decode 010000018bcfe56800')
  }
  const packets = positionals.map(parseHex)
  let invalid = 0
  for (const packet of packets) {
    const description = describePacket(packet)
    if (description.kind === 'malformed') invalid += 1
    if (flags.json) {
      process.stdout.write(JSON.stringify(asJson(description)) + '\n')
      continue
    }
    const rows = details(description)
    const width = Math.max(...rows.map(([name]) => name.length))
    process.stdout.write(summary(description) + '\n')
    for (const [name, value] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${value}\n`)
  }
  // Scripts test the status: "not a valid packet" is a failure, not a usage error.
  return invalid > 0 ? EXIT.failure : EXIT.ok
}

module.exports = { name: 'decode', brief: 'decode a packet given in hex', help, options, run }
