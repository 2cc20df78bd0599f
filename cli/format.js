'use strict'
// Human and JSON forms of a packet as `describePacket` sees it.

/** ISO date of a ms timestamp, or a note when it is outside what a Date holds. */
function isoDate(ms) {
  const date = new Date(ms)
  return Number.isNaN(date.valueOf()) ? null : date.toISOString()
}

function stamp(ms) {
  return `${isoDate(ms) || 'out-of-range date'} (${ms} ms)`
}

/** Local wall-clock time with milliseconds: 14:03:22.117 */
function localTime(date) {
  const pad = (n, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** One line saying what the packet is. */
function summary(packet) {
  switch (packet.kind) {
    case 'announcement':
      if (!packet.extended) return `announcement v1 plain (unscoped)  startedAt ${stamp(packet.timestamp)}`
      return [
        'announcement ours',
        packet.service === null ? 'unscoped' : `service=${packet.service}`,
        `instance=${packet.instance === null ? '-' : packet.instance}`,
        packet.signed ? 'signed' : 'unsigned',
        ` startedAt ${stamp(packet.timestamp)}`,
      ].join(' ')
    case 'status':
      return [
        `status v2 ${packet.status}`,
        `service=${packet.serviceName}`,
        `addresses=${packet.addresses.join(',') || '-'}`,
        ` timestamp ${stamp(packet.timestamp)}`,
      ].join(' ')
    default: {
      const more = packet.length > packet.preview.length / 2 ? '…' : ''
      return `malformed (${packet.reason}) ${packet.length} bytes: ${packet.preview}${more}`
    }
  }
}

/** Every field of the packet, one `name: value` pair per entry, for `decode`. */
function details(packet) {
  const { kind, ...fields } = packet
  const rows = [['kind', kind], ...Object.entries(fields).filter(([, value]) => value !== null)]
  if (packet.timestamp !== undefined) rows.push(['date', isoDate(packet.timestamp) || 'out of range'])
  return rows.map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)])
}

/** The JSON object printed by `--json`: the description plus the timestamp as a date. */
function asJson(packet, extra = {}) {
  const date = packet.timestamp === undefined ? undefined : isoDate(packet.timestamp)
  return { ...extra, ...packet, ...(date === undefined ? {} : { date }) }
}

module.exports = { summary, details, asJson, localTime, isoDate }
