#!/usr/bin/env node
'use strict'
// The `handover` command: parse arguments, call the library, print.
// Exit codes: 0 done, 1 something on the machine got in the way (port in
// use, send failed) or `decode` was given a packet that is not valid, 2 a
// usage or configuration error the user can fix.

// On a Node older than the package supports, the first `require('node:…')`
// would fail with a message that names no version: say it plainly instead.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 14 || (major === 14 && minor < 18)) {
  process.stderr.write(`handover: needs Node 14.18 or later; this is Node ${process.version}\n`)
  process.exit(1)
}

// Before anything loads the addon: the version is worth knowing most when
// the binary is missing or of another release.
if (process.argv[2] === '--version' || process.argv[2] === '-v') {
  process.stdout.write(`${require('../package.json').version}\n`)
  process.exit(0)
}

const { parseArgs } = require('./args')
const { UsageError, EXIT, exitCodeOf } = require('./errors')

const COMMANDS = Object.fromEntries(
  ['watch', 'announce', 'status', 'decode', 'route'].map((name) => [name, require(`./commands/${name}`)]),
)

const usage = `Usage: handover <command> [options]

Watch and exercise the hand-over between the old and new instance of a
balenaOS service (handover-native).

Commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.name.padEnd(10)}${c.brief}`)
  .join('\n')}

Every command takes -h/--help. Flags override the environment variables the
library reads (SHUTDOWN_PORT, HANDOVER_NETWORK_MODE, NETWORK_INTERFACE, …).
handover -v/--version prints the version of handover-native.

Exit codes: 0 done, 1 failed (port in use, send failed; for decode: a
packet that is not valid), 2 usage or configuration error.
`

function parse(command, args) {
  try {
    return parseArgs({
      args,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
  } catch (error) {
    // parseArgs explains itself (unknown option, missing value); point at the help.
    throw new UsageError(`${error.message}\nSee: handover ${command.name} --help`)
  }
}

async function main(argv) {
  const [name, ...args] = argv
  if (name === undefined) {
    process.stderr.write(usage)
    return EXIT.usage
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && COMMANDS[args[0]]
    process.stdout.write(topic ? topic.help : usage)
    return EXIT.ok
  }
  const command = COMMANDS[name]
  if (!command) {
    process.stderr.write(`handover: unknown command '${name}'\n\n${usage}`)
    return EXIT.usage
  }
  const { values, positionals } = parse(command, args)
  if (values.help) {
    process.stdout.write(command.help)
    return EXIT.ok
  }
  if (!['decode', 'status', 'route'].includes(command.name) && positionals.length > 0) {
    throw new UsageError(
      `${command.name} takes no arguments; got '${positionals.join(' ')}'\nSee: handover ${command.name} --help`,
    )
  }
  return (await command.run(values, positionals)) || EXIT.ok
}

// `handover watch | head` closes our stdout: a normal way to stop.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error
  process.exit(EXIT.ok)
})

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error) => {
    process.stderr.write(`handover: ${error.message}\n`)
    process.exitCode = exitCodeOf(error)
  },
)
