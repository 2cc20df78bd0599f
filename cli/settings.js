'use strict'
// Channel settings for the CLI: a flag wins over its environment variable,
// which wins over the default, as in the library. Checked here rather than
// left to the library so that an error names the flag or variable the user
// actually set, and so that `watch` (plain Node sockets) gets the same checks.

const net = require('node:net')
const os = require('node:os')
const { UsageError } = require('./errors')

const DEFAULT_GROUP = '239.192.16.16'
const DEFAULT_INTERFACE = 'supervisor0'

/** Where each channel's port and address come from. */
const CHANNELS = {
  handover: {
    portFlag: 'port',
    portEnv: 'SHUTDOWN_PORT',
    defaultPort: 1536,
    addressFlag: 'address',
    addressEnv: 'SHUTDOWN_BROADCAST_ADDRESS',
  },
  status: {
    portFlag: 'status-port',
    portEnv: 'HANDOVER_STATUS_PORT',
    defaultPort: 1537,
    addressFlag: 'status-address',
    addressEnv: 'HANDOVER_STATUS_BROADCAST_ADDRESS',
  },
}

/** The flag's value if given, else the (non-blank) environment variable; with where it came from. */
function pick(flags, flag, env, variable) {
  if (flags[flag] !== undefined) return { value: flags[flag], source: `--${flag}` }
  const fromEnv = env[variable]
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv.trim(), source: variable }
  return undefined
}

function parsePort({ value, source }) {
  const port = /^\d+$/.test(value) ? Number(value) : NaN
  if (!(port >= 1 && port <= 65535)) {
    throw new UsageError(`${source} must be a whole number from 1 to 65535; got '${value}'`)
  }
  return port
}

function parseAddress({ value, source }) {
  if (!net.isIPv4(value)) {
    throw new UsageError(
      `${source} must be an IPv4 address: a multicast group like ${DEFAULT_GROUP}, ` +
        `or a unicast or broadcast address; got '${value}'`,
    )
  }
  return value
}

function isMulticast(address) {
  const first = Number(address.split('.')[0])
  return first >= 224 && first <= 239
}

function ipv4Of(entries) {
  const entry = (entries || []).find((e) => e.family === 'IPv4' || e.family === 4)
  return entry && entry.address
}

/**
 * The IPv4 address host mode joins and sends on, from an interface name or
 * address. The library would fall back to the default interface when the
 * interface is missing, which leaks to the LAN: the CLI refuses instead.
 */
function resolveInterface({ value, source }) {
  const interfaces = os.networkInterfaces()
  const names = Object.keys(interfaces).join(', ')
  if (net.isIPv4(value)) {
    const owner = Object.keys(interfaces).find((name) => interfaces[name].some((e) => e.address === value))
    if (!owner) throw new UsageError(`${source}: no network interface has the address ${value}; interfaces here: ${names}`)
    return { name: owner, address: value }
  }
  if (!interfaces[value]) {
    const origin = source ? `from ${source}` : 'the default; choose one with --interface or NETWORK_INTERFACE'
    throw new UsageError(
      `interface '${value}' does not exist (${origin}); host mode joins and sends on it. Interfaces here: ${names}`,
    )
  }
  const address = ipv4Of(interfaces[value])
  if (!address) throw new UsageError(`interface '${value}' has no IPv4 address, which host mode needs`)
  return { name: value, address }
}

/** Network mode and, in host mode, the interface; shared by both channels. */
function resolveNetwork(flags, env = process.env) {
  const mode = pick(flags, 'network-mode', env, 'HANDOVER_NETWORK_MODE') || { value: 'bridge' }
  const networkMode = mode.value.toLowerCase()
  if (networkMode !== 'bridge' && networkMode !== 'host') {
    throw new UsageError(`${mode.source} must be 'bridge' or 'host'; got '${mode.value}'`)
  }
  if (networkMode === 'bridge') {
    if (flags.interface !== undefined) {
      process.stderr.write('handover: note: --interface is used only with --network-mode host\n')
    }
    return { networkMode, interface: null }
  }
  const chosen = pick(flags, 'interface', env, 'NETWORK_INTERFACE') || { value: DEFAULT_INTERFACE, source: null }
  return { networkMode, interface: resolveInterface(chosen) }
}

/** Port and address of one channel ('handover' or 'status'), on the network from resolveNetwork. */
function resolveChannel(which, flags, network, env = process.env) {
  const spec = CHANNELS[which]
  const port = pick(flags, spec.portFlag, env, spec.portEnv)
  const address = pick(flags, spec.addressFlag, env, spec.addressEnv)
  return {
    name: which,
    port: port ? parsePort(port) : spec.defaultPort,
    address: address ? parseAddress(address) : DEFAULT_GROUP,
    ...network,
  }
}

/**
 * Library options for a channel. The interface goes by address, so the
 * library resolves nothing itself. The CLI prints what it did, so the
 * library's info lines are noise unless asked for.
 */
function libraryOptions(channel, flags, env = process.env) {
  const options = { port: channel.port, address: channel.address, networkMode: channel.networkMode }
  if (channel.interface) options.networkInterface = channel.interface.address
  const level = pick(flags, 'log-level', env, 'LOGLEVEL')
  options.logLevel = level ? level.value : 'warning'
  return options
}

/** "239.192.16.16:1536 on lo (127.0.0.1)" */
function describeChannel(channel) {
  const on = channel.interface
  const where = on ? `on ${on.name} (${on.address})` : 'on the default interface'
  return `${channel.address}:${channel.port} ${where}`
}

module.exports = { resolveChannel, resolveNetwork, libraryOptions, describeChannel, isMulticast, pick }
