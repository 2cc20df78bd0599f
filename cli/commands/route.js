'use strict'
// `handover route haproxy|caddy|nginx`: a router that follows the status
// channel of one service and keeps the proxy's servers in step, through
// the proxy's own control interface. Prints a line per state change.

const { HandoverRouter } = require('../../index.js')
const { adapterFor } = require('../../adapters')
const { UsageError, wholeNumber } = require('../errors')
const { untilSignal } = require('../sending')
const { CLI_LOG_LEVEL } = require('../settings')

const help = `Usage: handover route haproxy|caddy|nginx --service NAME --service-port N [options]

Follows the status channel of one service and drives the proxy: an instance
that says UP gets a server, one that says DOWN is drained, and once the proxy
confirms the drain the router tells the instance (DRAINED), so that its
status.drain() ends. Runs until Ctrl-C or SIGTERM. HANDOVER_SECRET, when set,
makes it accept only signed, fresh status messages (and sign its own).

Router options:
  --service NAME        the service routed (HANDOVER_ROUTE_SERVICE). Required:
                        in a proxy container, BALENA_SERVICE_NAME is the proxy's.
  --service-port N      the port every instance serves on (HANDOVER_ROUTE_SERVICE_PORT)
  --subnet CIDR         route only addresses inside it; repeat for more
                        (HANDOVER_ROUTE_SUBNETS, comma-separated; default: the
                        subnet of the interface the router listens on)
  --interface A         IPv4 address of the interface to listen and send on
                        (default: the interface of the route to the group)
  --status-port N       status channel port (HANDOVER_STATUS_PORT; default 1537)
  --status-address A    status group (HANDOVER_STATUS_BROADCAST_ADDRESS; default 239.192.16.16)
  --router-port N       where HELLO and DRAINED go (HANDOVER_ROUTER_PORT; default 1538)
  --name NAME           this router's name in drain reports (default: the host name)
  --up-period MS        instances say UP this often; silent for 3 periods is gone (default 10000)
  --reconcile MS        check the proxy against the table this often (default 2000)
  --log-level L         the library's log level (LOGLEVEL; default ${CLI_LOG_LEVEL} here)

HAProxy (Runtime API; see docs/ROUTING.md for the backend's server-template):
  --socket S            unix socket path or host:port (HANDOVER_HAPROXY_SOCKET)
  --backend B           backend name (HANDOVER_HAPROXY_BACKEND; default app)
Caddy (admin API; the reverse_proxy handler tagged "@id"):
  --admin URL           admin endpoint (HANDOVER_CADDY_ADMIN; default http://127.0.0.1:2019)
  --id ID               the handler's @id (HANDOVER_CADDY_ID; default handover)
  --settle MS           after a change that removes an upstream, give requests
                        Caddy routed there before it this long to arrive, then
                        confirm (HANDOVER_CADDY_SETTLE_MS; default 100)
nginx (an upstream file, then a graceful reload):
  --upstream-file F     the file nginx includes (HANDOVER_NGINX_UPSTREAM_FILE)
  --upstream NAME       upstream block name (HANDOVER_NGINX_UPSTREAM; default app)
  --reload CMD          reload command (HANDOVER_NGINX_RELOAD; default 'nginx -s reload')
  --confirm-port P      port or host:port of the confirmation server the file
                        declares (HANDOVER_NGINX_CONFIRM_PORT)
  -h, --help            this help

Example:
  handover route haproxy --service api --service-port 8080 \\
    --socket /run/haproxy/admin.sock --backend app --subnet 10.77.0.0/24
`

const options = {
  service: { type: 'string' },
  'service-port': { type: 'string' },
  subnet: { type: 'string', multiple: true },
  interface: { type: 'string' },
  'status-port': { type: 'string' },
  'status-address': { type: 'string' },
  'router-port': { type: 'string' },
  name: { type: 'string' },
  'up-period': { type: 'string' },
  reconcile: { type: 'string' },
  'log-level': { type: 'string' },
  socket: { type: 'string' },
  backend: { type: 'string' },
  admin: { type: 'string' },
  id: { type: 'string' },
  settle: { type: 'string' },
  'upstream-file': { type: 'string' },
  upstream: { type: 'string' },
  reload: { type: 'string' },
  'confirm-port': { type: 'string' },
}

/** Which flags belong to which proxy: another proxy's flag is a mistake worth saying. */
const PROXY_FLAGS = {
  haproxy: ['socket', 'backend'],
  caddy: ['admin', 'id', 'settle'],
  nginx: ['upstream-file', 'upstream', 'reload', 'confirm-port'],
}

/** A whole-number flag, else (when one is named) its variable; undefined when neither is set. */
function integer(flags, flag, variable, env) {
  if (flags[flag] !== undefined) return wholeNumber(flags[flag], `--${flag}`)
  const text = variable ? env[variable] : undefined
  if (text === undefined || text.trim() === '') return undefined
  return wholeNumber(text.trim(), variable)
}

/** The router's options from flags, then the CLI's own variables; the library reads its usual ones itself. */
function routerOptions(flags, env) {
  const service = flags.service || env.HANDOVER_ROUTE_SERVICE
  if (!service) throw new UsageError('route needs --service NAME (or HANDOVER_ROUTE_SERVICE): the service to route')
  const servicePort = integer(flags, 'service-port', 'HANDOVER_ROUTE_SERVICE_PORT', env)
  if (servicePort === undefined) {
    throw new UsageError('route needs --service-port N (or HANDOVER_ROUTE_SERVICE_PORT): the port every instance serves on')
  }
  const subnets = flags.subnet || (env.HANDOVER_ROUTE_SUBNETS ? env.HANDOVER_ROUTE_SUBNETS.split(',').map((s) => s.trim()) : undefined)
  const picked = {
    serviceName: service,
    servicePort,
    subnets,
    interfaceAddress: flags.interface,
    networkPort: integer(flags, 'status-port'),
    statusBroadcastAddress: flags['status-address'],
    routerPort: integer(flags, 'router-port'),
    name: flags.name,
    upPeriodMs: integer(flags, 'up-period'),
    reconcileMs: integer(flags, 'reconcile'),
    logLevel: flags['log-level'] || (env.LOGLEVEL ? undefined : CLI_LOG_LEVEL),
  }
  return Object.fromEntries(Object.entries(picked).filter(([, value]) => value !== undefined))
}

function adapterOptions(kind, flags) {
  for (const [other, names] of Object.entries(PROXY_FLAGS)) {
    if (other === kind) continue
    const stray = names.find((name) => flags[name] !== undefined)
    if (stray) throw new UsageError(`--${stray} is for ${other}, not ${kind}`)
  }
  return {
    haproxy: { socket: flags.socket, backend: flags.backend },
    caddy: { admin: flags.admin, id: flags.id, settleMs: integer(flags, 'settle') },
    nginx: { file: flags['upstream-file'], upstream: flags.upstream, reload: flags.reload, confirmPort: flags['confirm-port'] },
  }[kind]
}

const stamp = () => new Date().toISOString()

async function run(flags, positionals, env = process.env) {
  const [kind, ...extra] = positionals
  if (!PROXY_FLAGS[kind] || extra.length > 0) {
    throw new UsageError(`route takes haproxy, caddy or nginx; got ${positionals.length ? `'${positionals.join(' ')}'` : 'nothing'}`)
  }
  const options = routerOptions(flags, env)
  let adapter
  try {
    adapter = adapterFor(kind, adapterOptions(kind, flags))
  } catch (error) {
    throw new UsageError(error.message)
  }
  let router
  try {
    router = new HandoverRouter(adapter, options)
  } catch (error) {
    throw new UsageError(error.message)
  }
  // Failures are told once per state change by the 'unreachable' line.
  router.on('error', () => {})
  router.on('change', (line) => process.stdout.write(`${stamp()} ${line}\n`))
  await router.start()
  process.stdout.write(
    `${stamp()} routing service ${options.serviceName} (port ${options.servicePort}) inside ${router.subnets.join(', ')} to ${adapter.describe()}; router ${router.id}\n`,
  )
  await untilSignal()
  await router.close()
  process.stdout.write(`${stamp()} stopped\n`)
}

module.exports = { name: 'route', brief: 'drive HAProxy, Caddy or nginx from the status channel', help, options, run }
