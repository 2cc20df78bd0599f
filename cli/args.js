'use strict'
// Command-line parsing. Node's util.parseArgs exists from Node 16.17 and
// 18.3 on; the package supports older Node too, so where it is missing a
// small parser of the same shape takes over. It covers what this CLI uses:
// long flags (`--name value`, `--name=value`), one-letter aliases (`-h`),
// string and boolean flags, `multiple`, positionals, and `--` ending the
// flags. Strict, as the CLI asks: an unknown flag or a missing value throws.

const util = require('node:util')

function parseArgs(config) {
  return typeof util.parseArgs === 'function' ? util.parseArgs(config) : parseArgsFallback(config)
}

class ArgumentError extends TypeError {}

function parseArgsFallback({ args, options = {}, allowPositionals = false }) {
  const values = Object.create(null)
  const positionals = []
  const longName = {}
  for (const name of Object.keys(options)) if (options[name].short) longName[options[name].short] = name

  const store = (name, value) => {
    if (options[name].multiple) values[name] = (values[name] || []).concat([value])
    else values[name] = value
  }

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      if (!allowPositionals && i + 1 < args.length) throw new ArgumentError(`Unexpected argument '${args[i + 1]}'`)
      positionals.push(...args.slice(i + 1))
      break
    }
    if (arg.length < 2 || arg[0] !== '-') {
      if (!allowPositionals) throw new ArgumentError(`Unexpected argument '${arg}': this command takes none`)
      positionals.push(arg)
      continue
    }

    let name
    let inline
    let shown
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=')
      name = equals === -1 ? arg.slice(2) : arg.slice(2, equals)
      inline = equals === -1 ? undefined : arg.slice(equals + 1)
      shown = `--${name}`
      if (!Object.prototype.hasOwnProperty.call(options, name)) throw new ArgumentError(`Unknown option '${shown}'`)
    } else {
      // -x, or several one-letter boolean flags together (-xy).
      const letters = arg.slice(1).split('')
      const unknown = letters.find((letter) => !longName[letter])
      if (unknown !== undefined) throw new ArgumentError(`Unknown option '-${unknown}'`)
      if (letters.length > 1) {
        const valued = letters.find((letter) => options[longName[letter]].type !== 'boolean')
        if (valued !== undefined) throw new ArgumentError(`Option '-${valued}' takes a value: give it on its own`)
        for (const letter of letters) store(longName[letter], true)
        continue
      }
      name = longName[letters[0]]
      shown = `-${letters[0]}`
    }

    if (options[name].type === 'boolean') {
      if (inline !== undefined) throw new ArgumentError(`Option '${shown}' is a switch and takes no value; got '${arg}'`)
      store(name, true)
      continue
    }
    if (inline !== undefined) {
      store(name, inline)
      continue
    }
    const next = args[i + 1]
    if (next === undefined) throw new ArgumentError(`Option '${shown}' needs a value`)
    if (next.startsWith('-')) {
      throw new ArgumentError(`Option '${shown}' needs a value; for a value that starts with '-', write --${name}=${next}`)
    }
    store(name, next)
    i += 1
  }
  return { values, positionals }
}

module.exports = { parseArgs, parseArgsFallback }
