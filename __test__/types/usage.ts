// Compiled (not run) by __test__/types.test.js: the declarations must accept
// the whole public API as documented and refuse what it does not take.
import {
  HandoverPeer,
  HandoverStatus,
  HandoverStats,
  HandoverReport,
  ShuttingDownEvent,
  HandoverStatusMessage,
  describePacket,
  encodeStatusMessage,
  HandoverRouter,
  RouterAdapter,
  RouteTable,
  DrainReport,
} from '../..'

const startedAt = new Date()
const peer = new HandoverPeer(startedAt)
const scoped = new HandoverPeer(startedAt, { id: 'api-1', extra: true }, {
  port: 1536,
  address: '239.192.16.16',
  networkMode: 'host',
  networkInterface: 'supervisor0',
  heartbeatIntervalMs: 10_000,
  handoverCompletePath: '/tmp/balena/handover-complete',
  callbackTimeoutMs: 30_000,
  serviceName: 'api',
  secret: 's3cret',
  logLevel: 'debug',
  logger: console,
})
new HandoverPeer(startedAt, undefined, { logger: (level: string, message: string) => void [level, message] })

peer.startListening(async () => {})
peer.startListening(() => undefined)
peer.startBroadcasting()
const shuttingDown: boolean = peer.shuttingDown
const port: number = peer.shutdownPort
const address: string = peer.shutdownBroadcastAddress
const same: Date = peer.startedAt
const id: string = peer.context.id
const instance: string = scoped.instanceId
const stats: HandoverStats = peer.stats()
const dropped: number = stats.malformed + stats.otherService + stats.unauthenticated + stats.replayed
peer.on('shuttingDown', (event: ShuttingDownEvent) => event.heardStartedAt)
peer.once('handover', (report: HandoverReport) => report.completeFile ?? report.completeFileError)
peer.on('error', (error: Error) => error.message)
const report: Promise<HandoverReport> = peer.handover
peer.close()

const status = new HandoverStatus(startedAt, 'api', ['10.0.0.2'], { id: 'status' }, { port: 1537 })
status.startBroadcastingServiceUp()
status.startBroadcastingServiceDown()
status.startListening(async (message: HandoverStatusMessage) => {
  const timestamp: bigint = message.timestamp
  return [timestamp, message.serviceName, message.addresses, message.status]
})
const statusPort: number = status.networkPort
const statusAddress: string = status.statusBroadcastAddress
status.close()

const packet = describePacket(encodeStatusMessage(Date.now(), 'api', ['10.0.0.2'], 'UP'))
if (packet.kind === 'status') packet.addresses.join(',')
if (packet.kind === 'announcement' && packet.extended) packet.signed
const sequence: number | null = packet.kind === 'announcement' && packet.extended ? packet.sequence : null
if (packet.kind === 'announcement' && !packet.extended) {
  // @ts-expect-error a plain announcement has no extension fields
  packet.service
}

// As handover-lib took it: ms since the epoch; and its writable flag.
new HandoverPeer(Date.now()).shuttingDown = true
// @ts-expect-error startedAt is a Date or a time value, not a boolean
new HandoverPeer(true)
// @ts-expect-error networkMode is 'bridge' or 'host'
new HandoverPeer(startedAt, undefined, { networkMode: 'overlay' })
// @ts-expect-error the status timestamp is a bigint
status.startListening((message: HandoverStatusMessage) => message.timestamp.toFixed())

void [shuttingDown, port, address, same, id, instance, dropped, report, statusPort, statusAddress, sequence]

// The router side: an adapter of one's own, the router, and the drain.
const adapter: RouterAdapter = {
  async apply(table: RouteTable) {
    for (const server of table.servers) void `${server.address}:${server.port} ${server.state}`
  },
}
const router = new HandoverRouter(adapter, { serviceName: 'api', servicePort: 8080, subnets: ['10.0.0.0/24'] })
router.on('change', (line: string, event) => void [line, event.kind, event.elapsedMs])
void router.start().then((r) => r.table()?.generation)
const drained: Promise<DrainReport> = new HandoverStatus(new Date(), 'api', []).drain({ timeoutMs: 5000 })
void drained.then((report) => report.acknowledged.map((router) => router.name).concat(report.timedOut.map((r) => r.id)))
// @ts-expect-error an adapter must apply
new HandoverRouter({}, { serviceName: 'api', servicePort: 8080 })
// @ts-expect-error subnets are strings
new HandoverRouter(adapter, { servicePort: 8080, subnets: [10] })

// The built-in adapters, typed.
import { adapterFor, HAProxyAdapter } from '../../adapters'
const haproxy: HAProxyAdapter = adapterFor('haproxy', { socket: '/run/haproxy/admin.sock', backend: 'app' })
void new HandoverRouter(haproxy, { serviceName: 'api', servicePort: 8080 })
// @ts-expect-error Caddy takes no socket
adapterFor('caddy', { socket: '/x' })
