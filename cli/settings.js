'use strict'
// Channel settings for the CLI. The library resolves them, as its
// constructors do: a flag is the option, which wins over its environment
// variable, which wins over the default; parsing, checks and defaults are
// the library's (resolveChannelSettings, settingDescriptions). The CLI adds
// three things: errors name the flag the user typed, host mode refuses an
// interface the library would fall back from (the default interface reaches
// the LAN), and the library's log level defaults to 'warning' here.

const os = require('node:os')
// The same public entry users require.
const library = require('../index.js')
const { UsageError } = require('./errors')

/** The CLI prints what it did, so the library's info lines are noise unless asked for. */
const CLI_LOG_LEVEL = 'warning'

/** The flag (without its dashes) that sets each option of a channel. */
const FLAGS = {
  handover: {
    port: 'port',
    address: 'address',
    networkMode: 'network-mode',
    networkInterface: 'interface',
    logLevel: 'log-level',
  },
  status: {
    port: 'status-port',
    address: 'status-address',
    networkMode: 'network-mode',
    networkInterface: 'interface',
    logLevel: 'log-level',
  },
}

const SETTINGS = library.settingDescriptions()

/** The library's description of an option: its environment variable and default. */
function setting(option, channel = 'handover') {
  const found = SETTINGS.find((s) => s.option === option && (s.channel === null || s.channel === channel))
  if (!found) throw new Error(`the library describes no setting '${option}' for the ${channel} channel`)
  return found
}


const CODED = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'])

/** The library's settings for one channel, from the flags given for it. */
function resolveSettings(channel, flags, env) {
  const given = {}
  for (const [option, flag] of Object.entries(FLAGS[channel])) {
    if (flags[flag] !== undefined) given[option] = flags[flag]
  }
  try {
    return library.resolveChannelSettings(channel, given, env)
  } catch (error) {
    if (!error || !CODED.has(error.code)) throw error
    // The message starts with what was wrong: `options.port` (a flag here)
    // or the environment variable, which already says what the user set.
    const message = error.message.replace(/^options\.(\w+)/, (name, option) =>
      FLAGS[channel][option] ? `--${FLAGS[channel][option]}` : name,
    )
    throw new UsageError(message)
  }
}

/** Where a value came from, as the user would recognise it: `--port`, `SHUTDOWN_PORT`, or null (the default). */
function originOf(settings, option) {
  const from = settings.from[option]
  if (from === 'option') return `--${FLAGS[settings.channel][option]}`
  if (from === 'environment') return setting(option, settings.channel).variable
  return null
}

/**
 * The interface host mode joins and sends on, named. The library would fall
 * back to the default interface when it cannot use the configured one,
 * which leaks to the LAN: the CLI refuses instead. It also refuses an
 * address no interface here has, which the library takes as given.
 */
function hostInterface(settings) {
  const interfaces = os.networkInterfaces()
  const names = Object.keys(interfaces)
  const configured = settings.networkInterface
  const origin = originOf(settings, 'networkInterface')
  if (settings.interfaceAddress === null) {
    const variable = setting('networkInterface').variable
    const why = origin ? `from ${origin}` : `the default; choose one with --interface or ${variable}`
    throw new UsageError(
      `${settings.interfaceFallback} (${why}): host mode joins and sends only on it; the library would fall ` +
        `back to the default interface, which reaches the LAN. Interfaces here: ${names.join(', ')}`,
    )
  }
  const address = settings.interfaceAddress
  if (interfaces[configured]) return { name: configured, address }
  const owner = names.find((name) => interfaces[name].some((e) => e.address === address))
  if (!owner) {
    throw new UsageError(`${origin || configured}: no network interface has the address ${address}; interfaces here: ${names.join(', ')}`)
  }
  return { name: owner, address }
}

/**
 * The given channels ('handover', 'status'), resolved from the flags and
 * the environment: name, port, address, isMulticast, networkMode,
 * interface ({ name, address } in host mode, else null) and log level.
 */
function resolveChannels(names, flags, env = process.env) {
  const channels = names.map((name) => {
    const settings = resolveSettings(name, flags, env)
    return {
      name,
      port: settings.port,
      address: settings.address,
      isMulticast: settings.isMulticast,
      networkMode: settings.networkMode,
      interface: settings.networkMode === 'host' ? hostInterface(settings) : null,
      logLevel: settings.from.logLevel === 'default' ? CLI_LOG_LEVEL : settings.logLevel,
    }
  })
  if (flags.interface !== undefined && channels[0].networkMode === 'bridge') {
    process.stderr.write('handover: note: --interface is used only with --network-mode host\n')
  }
  return channels
}

/** Library options for a channel: what the CLI resolved, so that the library resolves nothing itself. */
function libraryOptions(channel) {
  const options = { port: channel.port, address: channel.address, networkMode: channel.networkMode }
  if (channel.interface) options.networkInterface = channel.interface.address
  options.logLevel = channel.logLevel
  return options
}

/** "239.192.16.16:1536 on lo (127.0.0.1)" */
function describeChannel(channel) {
  const on = channel.interface
  const where = on ? `on ${on.name} (${on.address})` : 'on the default interface'
  return `${channel.address}:${channel.port} ${where}`
}

/** The flag's value if given, else the (non-blank) environment variable of the option; with where it came from. */
function pick(flags, flag, option, env = process.env) {
  if (flags[flag] !== undefined) return { value: flags[flag], source: `--${flag}` }
  const variable = setting(option).variable
  const fromEnv = env[variable]
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv.trim(), source: variable }
  return undefined
}

module.exports = { resolveChannels, libraryOptions, describeChannel, pick, setting, CLI_LOG_LEVEL }
