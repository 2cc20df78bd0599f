'use strict'
// examples/balena cannot run here (it needs a balena device), so this checks
// that its parts agree with one another: the compose file, HAProxy's config
// and the api's code. Every check is also shown to catch the mistake it is
// for, on a broken copy. No network: this suite opens no socket.

const fs = require('node:fs')
const { parseArgs } = require('../cli/args')
const routeCommand = require('../cli/commands/route')
const path = require('node:path')

const DIR = path.join(__dirname, '..', 'examples', 'balena')
const read = (file) => fs.readFileSync(path.join(DIR, file), 'utf8')

// Defaults of the library, for a value set neither by flag nor environment.
const DEFAULTS = { statusPort: '1537', routerPort: '1538', statusAddress: '239.192.16.16' }

// ---------------------------------------------------------------------------
// A reader for the subset of YAML that a compose file needs: block mappings,
// block sequences (of scalars, or of mappings), plain and quoted scalars,
// comments. Everything else (flow collections, anchors, block scalars, tabs)
// is refused, so the checks never run on something misread. Scalars stay
// strings.

function yamlLines(text) {
  const lines = []
  text.split('\n').forEach((raw, index) => {
    if (raw.includes('\t')) throw new Error(`line ${index + 1}: tabs are not supported`)
    const content = stripComment(raw).trimEnd()
    if (content.trim() === '') return
    const indent = content.length - content.trimStart().length
    lines.push({ indent, text: content.trim(), number: index + 1 })
  })
  return lines
}

function stripComment(line) {
  let quote = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote) {
      if (c === quote) quote = null
    } else if (c === '"' || c === "'") {
      quote = c
    } else if (c === '#' && (i === 0 || line[i - 1] === ' ')) {
      return line.slice(0, i)
    }
  }
  return line
}

function scalar(text, number) {
  if (/^(['"]).*\1$/.test(text)) return text.slice(1, -1)
  if (/^[[{&*|>!%@`]/.test(text)) throw new Error(`line ${number}: '${text}' is not in the supported YAML subset`)
  return text
}

/** `key: rest` → [key, rest], or null when the text is not a mapping entry. */
function entry(text) {
  const match = /^([^\s'"][^:]*?|'[^']*'|"[^"]*"):(?:\s+(.*))?$/.exec(text)
  return match ? [scalar(match[1]), match[2] === undefined ? '' : match[2]] : null
}

function parseYaml(text) {
  const lines = yamlLines(text)
  let at = 0

  function block(indent) {
    const first = lines[at]
    if (first.indent !== indent) throw new Error(`line ${first.number}: unexpected indentation`)
    return first.text.startsWith('- ') || first.text === '-' ? sequence(indent) : mapping(indent)
  }

  /** The value after `key:` or `- `: inline, or the deeper block that follows. */
  function value(rest, parentIndent, number) {
    if (rest !== '') return scalar(rest, number)
    if (at < lines.length && lines[at].indent > parentIndent) return block(lines[at].indent)
    return null
  }

  function mapping(indent) {
    const result = {}
    while (at < lines.length && lines[at].indent === indent) {
      const { text, number } = lines[at]
      const kv = entry(text)
      if (!kv) throw new Error(`line ${number}: expected 'key: value', got '${text}'`)
      if (Object.prototype.hasOwnProperty.call(result, kv[0])) throw new Error(`line ${number}: duplicate key '${kv[0]}'`)
      at++
      result[kv[0]] = value(kv[1], indent, number)
    }
    if (at < lines.length && lines[at].indent > indent) throw new Error(`line ${lines[at].number}: unexpected indentation`)
    return result
  }

  function sequence(indent) {
    const result = []
    while (at < lines.length && lines[at].indent === indent && (lines[at].text.startsWith('- ') || lines[at].text === '-')) {
      const { text, number } = lines[at]
      const rest = text.slice(1).trimStart()
      const kv = rest === '' ? null : entry(rest)
      if (kv) {
        // `- key: value`, its mapping going on at the column after the dash.
        const inner = indent + (text.length - rest.length)
        lines[at] = { indent: inner, text: rest, number }
        result.push(mapping(inner))
      } else {
        at++
        result.push(value(rest, indent, number))
      }
    }
    return result
  }

  const document = lines.length === 0 ? null : block(0)
  if (at < lines.length) throw new Error(`line ${lines[at].number}: unexpected indentation`)
  return document
}

// ---------------------------------------------------------------------------
// HAProxy's config: sections (a line at column 0) and their directives.

function parseHaproxy(text) {
  const sections = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trimEnd()
    if (line.trim() === '') continue
    const words = line.trim().split(/\s+/)
    if (!/^\s/.test(line)) sections.push({ kind: words[0], name: words[1] || null, directives: [] })
    else if (sections.length > 0) sections[sections.length - 1].directives.push(words)
    else throw new Error(`a directive outside any section: '${line.trim()}'`)
  }
  return sections
}

// ---------------------------------------------------------------------------
// The checks.

/** A service's environment as an object, from the mapping or the `KEY=value` list form. */
function environmentOf(service) {
  const env = service.environment || {}
  if (!Array.isArray(env)) return env
  return Object.fromEntries(env.map((line) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]))
}

/** A service's command as argv: compose takes a list, or a string split on spaces. */
function argvOf(service) {
  const command = service.command
  if (command == null) return []
  return Array.isArray(command) ? command.map(String) : String(command).trim().split(/\s+/)
}

/** The route command's flags: `--name value` or `--name=value`; a repeated flag gives a list. */
function flagsOf(argv) {
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([^=]+)(?:=(.*))?$/.exec(argv[i])
    if (!match) continue
    const value = match[2] !== undefined ? match[2] : argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true
    ;(flags[match[1]] = flags[match[1]] || []).push(value)
  }
  return flags
}

const networksOf = (service) => {
  const networks = service.networks || []
  return Array.isArray(networks) ? networks : Object.keys(networks)
}

const volumeTargets = (service) =>
  (service.volumes || []).map((volume) => (typeof volume === 'string' ? volume.split(':')[1] : volume.target))

/**
 * What is wrong with the example: one line per problem, [] when its parts
 * agree. Takes the files' text so that the tests can hand it broken copies.
 */
function problems({ compose: composeText, haproxy: haproxyText, api: apiText }) {
  const found = []
  const compose = parseYaml(composeText)
  const cfg = parseHaproxy(haproxyText)
  const services = compose.services || {}

  // The service on the hand-over strategy.
  const handedOver = Object.keys(services).filter(
    (name) => ((services[name].labels || {})['io.balena.update.strategy'] || '') === 'hand-over',
  )
  if (handedOver.length !== 1) found.push(`expected one service labelled io.balena.update.strategy: hand-over, found ${handedOver.length}`)
  const apiName = handedOver[0]
  const api = services[apiName] || {}
  const apiEnv = environmentOf(api)
  const timeout = (api.labels || {})['io.balena.update.handover-timeout']
  if (!/^\d+$/.test(timeout || '')) {
    found.push(`${apiName}: io.balena.update.handover-timeout must be a whole number of ms, is ${timeout}`)
  } else {
    const drain = /drain\(\{\s*timeoutMs:\s*(\d+)/.exec(apiText)
    if (!drain) found.push('api/index.js: no status.drain({ timeoutMs: N }) found')
    else if (Number(timeout) <= Number(drain[1])) {
      found.push(`${apiName}: the handover timeout (${timeout} ms) must be longer than the drain's timeoutMs (${drain[1]} ms)`)
    }
  }

  // The service running the router.
  const routers = Object.keys(services).filter((name) => {
    const argv = argvOf(services[name])
    const at = argv.indexOf('handover')
    return at >= 0 && argv[at + 1] === 'route'
  })
  if (routers.length !== 1) {
    found.push(`expected one service running 'handover route', found ${routers.length}`)
    return found
  }
  const proxyName = routers[0]
  const proxy = services[proxyName]
  const proxyEnv = environmentOf(proxy)
  const argv = argvOf(proxy)
  const kind = argv[argv.indexOf('route') + 1]
  if (kind !== 'haproxy') found.push(`${proxyName}: expected 'handover route haproxy', got 'handover route ${kind}'`)
  const flags = flagsOf(argv)
  const flag = (name) => (flags[name] ? flags[name][flags[name].length - 1] : undefined)

  // The command is one the CLI takes: parsed with route's own flags.
  try {
    parseArgs({ args: argv.slice(argv.indexOf('route') + 1), options: routeCommand.options, allowPositionals: true, strict: true })
  } catch (error) {
    found.push(`${proxyName}: handover route refuses this command line: ${error.message}`)
  }

  // --service names the hand-over service.
  if (flag('service') !== apiName) found.push(`${proxyName}: --service is ${flag('service')}, the hand-over service is ${apiName}`)

  // --socket is HAProxy's admin socket, shared through a volume.
  const global = cfg.find((s) => s.kind === 'global')
  const socket = global && global.directives.find((d) => d[0] === 'stats' && d[1] === 'socket')
  if (!socket) found.push('haproxy.cfg: no `stats socket` in global')
  else {
    if (flag('socket') !== socket[2]) found.push(`${proxyName}: --socket is ${flag('socket')}, haproxy.cfg's stats socket is ${socket[2]}`)
    const level = socket.indexOf('level')
    if (level < 0 || socket[level + 1] !== 'admin') found.push("haproxy.cfg: the stats socket needs 'level admin' for set server")
    if (!volumeTargets(proxy).includes(path.posix.dirname(socket[2]))) {
      found.push(`${proxyName}: no volume mounted at ${path.posix.dirname(socket[2])}, the stats socket's folder`)
    }
  }

  // --backend is a backend of slots, and the frontend sends to it.
  const backendName = flag('backend')
  const backend = cfg.find((s) => s.kind === 'backend' && s.name === backendName)
  if (!backend) found.push(`${proxyName}: --backend is ${backendName}, haproxy.cfg has no such backend`)
  else {
    const template = backend.directives.find((d) => d[0] === 'server-template')
    if (!template) found.push(`haproxy.cfg: backend ${backendName} has no server-template`)
    else if (template[1] !== 'slot' || !/^1-\d+$/.test(template[2])) {
      found.push(`haproxy.cfg: backend ${backendName}'s server-template must name slot1..slotN ('slot 1-N'), is '${template.slice(1, 3).join(' ')}'`)
    } else if (!template.includes('disabled')) {
      found.push(`haproxy.cfg: backend ${backendName}'s slots must start disabled, or HAProxy sends to the placeholder address`)
    }
    const routed = cfg.some((s) =>
      s.directives.some((d) => (d[0] === 'default_backend' || d[0] === 'use_backend') && d[1] === backendName),
    )
    if (!routed) found.push(`haproxy.cfg: no frontend sends to backend ${backendName}`)
  }

  // One network for both, and the subnet the router accepts is that network's.
  const shared = networksOf(api).filter((n) => networksOf(proxy).includes(n))
  if (shared.length === 0) found.push(`${apiName} and ${proxyName} share no network`)
  for (const name of shared) {
    if (!compose.networks || !(name in compose.networks)) found.push(`network ${name} is not declared under networks:`)
  }
  if (flags.subnet) {
    const subnets = shared.flatMap((name) => {
      const ipam = ((compose.networks || {})[name] || {}).ipam || {}
      return (ipam.config || []).map((c) => c.subnet)
    })
    for (const subnet of flags.subnet) {
      if (!subnets.includes(subnet)) found.push(`${proxyName}: --subnet ${subnet} is not the subnet of a network it shares with ${apiName} (${subnets.join(', ') || 'none declared'})`)
    }
  }

  // The api serves on the port the router routes to.
  if (apiEnv.PORT !== flag('service-port')) found.push(`${proxyName}: --service-port is ${flag('service-port')}, ${apiName} serves on PORT ${apiEnv.PORT}`)
  if (!(api.expose || []).map(String).includes(String(apiEnv.PORT))) found.push(`${apiName}: PORT ${apiEnv.PORT} is not in expose`)
  if (!/process\.env\.PORT/.test(apiText)) found.push('api/index.js does not listen on process.env.PORT')

  // Both ends of the status channel and of the router port agree.
  const channel = [
    ['status port', 'status-port', 'HANDOVER_STATUS_PORT', DEFAULTS.statusPort],
    ['router port', 'router-port', 'HANDOVER_ROUTER_PORT', DEFAULTS.routerPort],
    ['status address', 'status-address', 'HANDOVER_STATUS_BROADCAST_ADDRESS', DEFAULTS.statusAddress],
  ]
  for (const [what, flagName, variable, fallback] of channel) {
    const atApi = apiEnv[variable] !== undefined ? String(apiEnv[variable]) : fallback
    const atProxy = flag(flagName) !== undefined ? flag(flagName) : proxyEnv[variable] !== undefined ? String(proxyEnv[variable]) : fallback
    if (atApi !== atProxy) found.push(`the ${what} differs: ${apiName} uses ${atApi}, ${proxyName} ${atProxy}`)
  }
  return found
}

// ---------------------------------------------------------------------------

const files = () => ({ compose: read('docker-compose.yml'), haproxy: read('haproxy/haproxy.cfg'), api: read('api/index.js') })

describe('the YAML subset reader', () => {
  test('reads mappings, sequences of scalars and of mappings, quotes and comments', () => {
    const text = [
      'a: 1 # one',
      'b:',
      '  - x',
      '  - "y # not a comment"',
      '  - k: v',
      '    l: w',
      'c:',
      '  d:',
      "    e: 'f:g'",
      'empty:',
    ].join('\n')
    expect(parseYaml(text)).toEqual({ a: '1', b: ['x', 'y # not a comment', { k: 'v', l: 'w' }], c: { d: { e: 'f:g' } }, empty: null })
  })

  test('refuses what it does not read rather than misreading it', () => {
    expect(() => parseYaml('a: [1, 2]')).toThrow(/not in the supported YAML subset/)
    expect(() => parseYaml('a: &x 1')).toThrow(/not in the supported YAML subset/)
    expect(() => parseYaml('a: |\n  text')).toThrow(/not in the supported YAML subset/)
    expect(() => parseYaml('a:\n  b: 1\n c: 2')).toThrow(/indentation/)
    expect(() => parseYaml('a: 1\na: 2')).toThrow(/duplicate key/)
  })
})

test("examples/balena's compose file, HAProxy config and api agree", () => {
  expect(problems(files())).toEqual([])
})

test('the api hands over: HandoverPeer, HandoverStatus, drain before close', () => {
  const api = read('api/index.js')
  expect(api).toMatch(/new HandoverPeer\(/)
  expect(api).toMatch(/new HandoverStatus\(/)
  expect(api).toMatch(/startBroadcastingServiceUp\(\)[\s\S]*peer\.startBroadcasting\(\)/)
  expect(api).toMatch(/await status\.drain\(\{ timeoutMs: \d+ \}\)[\s\S]*server\.close\(/)
})

// Each broken copy must be caught, by the check written for it.
const BREAKAGES = [
  ['no hand-over strategy label', 'compose', 'io.balena.update.strategy: hand-over', 'io.balena.update.strategy: download-then-kill', /one service labelled io.balena.update.strategy: hand-over/],
  ['no handover timeout', 'compose', /\n\s*io\.balena\.update\.handover-timeout: "60000"/, '', /handover-timeout must be a whole number/],
  ['a handover timeout shorter than the drain', 'compose', 'handover-timeout: "60000"', 'handover-timeout: "5000"', /must be longer than the drain's timeoutMs/],
  ['the proxy does not run the router', 'compose', '      - route\n', '      - watch\n', /one service running 'handover route'/],
  ['another proxy kind', 'compose', '      - haproxy\n', '      - nginx\n', /expected 'handover route haproxy'/],
  ['--socket elsewhere than the stats socket', 'compose', '      - /run/haproxy/admin.sock', '      - /run/haproxy/other.sock', /--socket is \/run\/haproxy\/other.sock/],
  ['the stats socket elsewhere', 'haproxy', 'stats socket /run/haproxy/admin.sock', 'stats socket /var/run/admin.sock', /--socket is .*stats socket is \/var\/run\/admin.sock/],
  ['a stats socket without level admin', 'haproxy', 'mode 600 level admin', 'mode 600 level operator', /level admin/],
  ['the socket folder is not a volume', 'compose', '      - haproxy-run:/run/haproxy', '      - haproxy-run:/run/other', /no volume mounted at \/run\/haproxy/],
  ['--backend names no backend', 'compose', '      - --backend\n      - app\n', '      - --backend\n      - web\n', /--backend is web, haproxy.cfg has no such backend/],
  ['the backend renamed', 'haproxy', /^backend app$/m, 'backend api', /--backend is app, haproxy.cfg has no such backend/],
  ['no server-template', 'haproxy', /server-template[^\n]*/, 'server api1 10.77.0.2:8080', /has no server-template/],
  ['slots named otherwise', 'haproxy', 'server-template slot 1-10', 'server-template srv 1-10', /must name slot1..slotN/],
  ['slots not disabled', 'haproxy', '127.0.0.1:9 disabled', '127.0.0.1:9', /must start disabled/],
  ['no frontend sends to the backend', 'haproxy', 'default_backend app', 'default_backend other', /no frontend sends to backend app/],
  ['the proxy on another network', 'compose', /(proxy:[\s\S]*?networks:\n\s*- )app/, '$1default', /share no network/],
  ['the api on another network', 'compose', /(api:[\s\S]*?networks:\n\s*- )app/, '$1default', /share no network/],
  ['--subnet outside the network', 'compose', '      - 10.77.0.0/24', '      - 10.0.0.0/8', /--subnet 10.0.0.0\/8 is not the subnet/],
  ['--service-port not the api port', 'compose', '      - --service-port\n      - "8080"', '      - --service-port\n      - "80"', /--service-port is 80, api serves on PORT 8080/],
  ['the api on another port', 'compose', 'PORT: "8080"', 'PORT: "3000"', /--service-port is 8080, api serves on PORT 3000/],
  ['the api port not exposed', 'compose', '    expose:\n      - "8080"', '    expose:\n      - "9090"', /PORT 8080 is not in expose/],
  ['the status port differs', 'compose', /(proxy:[\s\S]*?)HANDOVER_STATUS_PORT: "1537"/, '$1HANDOVER_STATUS_PORT: "1600"', /the status port differs: api uses 1537, proxy 1600/],
  ['the status port set on one side only', 'compose', /(api:[\s\S]*?)HANDOVER_STATUS_PORT: "1537"/, '$1HANDOVER_STATUS_PORT: "1600"', /the status port differs: api uses 1600, proxy 1537/],
  ['a flag the route command does not take', 'compose', '      - --service-port\n', '      - --sevice-port\n', /handover route refuses this command line/],
  ['a --status-port flag that differs', 'compose', '      - 10.77.0.0/24\n', '      - 10.77.0.0/24\n      - --status-port\n      - "1700"\n', /the status port differs: api uses 1537, proxy 1700/],
  ['the router port differs', 'compose', /(proxy:[\s\S]*?)HANDOVER_ROUTER_PORT: "1538"/, '$1HANDOVER_ROUTER_PORT: "1539"', /the router port differs/],
  ['another status group on one side', 'compose', '      HANDOVER_ROUTER_PORT: "1538"\n    labels', '      HANDOVER_ROUTER_PORT: "1538"\n      HANDOVER_STATUS_BROADCAST_ADDRESS: 239.192.16.17\n    labels', /the status address differs/],
  ['--service not the hand-over service', 'compose', '      - --service\n      - api', '      - --service\n      - web', /--service is web, the hand-over service is api/],
  ['no drain in the api', 'api', /status\.drain\(\{ timeoutMs: 10000 \}\)/, 'status.startBroadcastingServiceDown()', /no status.drain/],
]

test.each(BREAKAGES)('a broken copy is caught: %s', (_, file, from, to, message) => {
  const broken = files()
  const changed = broken[file].replace(from, to)
  expect(changed).not.toBe(broken[file]) // the breakage applies to today's file
  broken[file] = changed
  const found = problems(broken)
  expect(found).toEqual(expect.arrayContaining([expect.stringMatching(message)]))
})
