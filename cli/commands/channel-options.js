'use strict'
// The flags that mirror the library's environment variables, grouped by the
// channel they configure, with their help lines.

const { setting, CLI_LOG_LEVEL } = require('../settings')

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

/**
 * What each flag sets: its help line, and the library's option and channel,
 * whose environment variable and default the help shows as the library
 * describes them (settingDescriptions).
 */
const HELP = {
  port: ['--port N', 'handover channel port', 'port', 'handover'],
  address: ['--address A', 'handover group, or a unicast/broadcast address', 'address', 'handover'],
  'status-port': ['--status-port N', 'status channel port', 'port', 'status'],
  'status-address': ['--status-address A', 'status group, or a unicast/broadcast address', 'address', 'status'],
  'network-mode': ['--network-mode M', "'bridge' or 'host'", 'networkMode'],
  interface: ['--interface I', 'host mode: interface name or IPv4 address', 'networkInterface'],
  'log-level': ['--log-level L', "the library's log level, emerg … debug", 'logLevel'],
}

/** "SHUTDOWN_PORT; default 1536", as the library describes the option. */
function sourceOf(option, channel) {
  const { variable, default: fallback } = setting(option, channel)
  if (option === 'logLevel') return `${variable}; default ${CLI_LOG_LEVEL} here, ${fallback} in the library`
  return fallback === null ? variable : `${variable}; default ${fallback}`
}

/** Help lines for the given option groups: what the flag sets, then its variable and default. */
function helpFor(...groups) {
  const indent = ' '.repeat(22)
  return groups
    .flatMap((group) => Object.keys(group))
    .map((name) => {
      const [flag, what, option, channel] = HELP[name]
      return `  ${flag.padEnd(20)}${what}\n${indent}(${sourceOf(option, channel)})`
    })
    .join('\n')
}

module.exports = { handoverOptions, statusOptions, networkOptions, logOptions, helpFor, sourceOf }
