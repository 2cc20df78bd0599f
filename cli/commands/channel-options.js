'use strict'
// The flags that mirror the library's environment variables, grouped by the
// channel they configure, with their help lines.

const handoverOptions = {
  port: { type: 'string' },
  address: { type: 'string' },
}

const statusOptions = {
  'status-port': { type: 'string' },
  'status-address': { type: 'string' },
}

const networkOptions = {
  'network-mode': { type: 'string' },
  interface: { type: 'string' },
}

const logOptions = {
  'log-level': { type: 'string' },
}

const HELP = {
  port: ['--port N', 'handover channel port', 'SHUTDOWN_PORT; default 1536'],
  address: [
    '--address A',
    'handover group, or a unicast/broadcast address',
    'SHUTDOWN_BROADCAST_ADDRESS; default 239.192.16.16',
  ],
  'status-port': ['--status-port N', 'status channel port', 'HANDOVER_STATUS_PORT; default 1537'],
  'status-address': [
    '--status-address A',
    'status group, or a unicast/broadcast address',
    'HANDOVER_STATUS_BROADCAST_ADDRESS; default 239.192.16.16',
  ],
  'network-mode': ['--network-mode M', "'bridge' or 'host'", 'HANDOVER_NETWORK_MODE; default bridge'],
  interface: ['--interface I', 'host mode: interface name or IPv4 address', 'NETWORK_INTERFACE; default supervisor0'],
  'log-level': ['--log-level L', "the library's log level, emerg … debug", 'LOGLEVEL; default warning here'],
}

/** Help lines for the given option groups: what the flag sets, then its variable and default. */
function helpFor(...groups) {
  const indent = ' '.repeat(22)
  return groups
    .flatMap((group) => Object.keys(group))
    .map((name) => {
      const [flag, what, source] = HELP[name]
      return `  ${flag.padEnd(20)}${what}\n${indent}(${source})`
    })
    .join('\n')
}

module.exports = { handoverOptions, statusOptions, networkOptions, logOptions, helpFor }
