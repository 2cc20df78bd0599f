'use strict'
// `npm run demo`: a zero-downtime update, end to end, on this machine only.
//
// A simulated supervisor runs v1 of a small web service; a router follows
// the status channel and keeps a proxy's servers in step, and a client sends
// requests through the proxy continuously. Then the supervisor starts v2: v2
// warms up, announces UP and its startedAt; the router routes to it; v1
// hears v2, announces DOWN and waits until the router confirmed that the
// proxy sends it nothing new (status.drain()), then closes; the library
// writes v1's handover-complete file; the supervisor sees the file and kills
// v1. The summary counts who served the requests and how many failed: none.
//
// The proxy is a small one in this process, or with --proxy haproxy a real
// HAProxy (installed: bash scripts/proxies.sh) driven through its Runtime API.
//
// With --host-network, both instances listen on one address and port, as
// services in network_mode: host do (listenShared): no router, the client
// connects to the port itself, and new connections go to v2 once it is ready.
//
// Everything stays on loopback (host mode on lo), on free ports and a
// multicast group of the demo's own, so it runs without root beside other
// handover traffic on the host and disturbs none of it.

const { EventEmitter, once } = require('node:events')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createTimeline } = require('./timeline')
const { freeUdpPort, freeTcpPortOn } = require('./ports')
const { Router, HAProxyRouter } = require('./router')
const { Client } = require('./client')
const { Supervisor } = require('./supervisor')

/** Each instance has an address of its own, as containers do; see router.js. */
const ADDRESSES = { v1: '127.0.0.2', v2: '127.0.0.3' }
const SERVICE = 'web'
const TIMING = {
  v1WarmupMs: 100,
  v2WarmupMs: 400,
  workMs: 25, // per request
  drainTimeoutMs: 3000, // the most v1 waits for the router's DRAINED
  v1AloneMs: 1000, // traffic before the update
  v2AloneMs: 700, // traffic after it
  handoverTimeoutMs: 5000,
  killGraceMs: 2000,
  watchdogMs: 20000, // the demo gives up
}
const CONCURRENCY = 4
const HOST_NETWORK = process.argv.includes('--host-network')
const PROXIES = { node: Router, haproxy: HAProxyRouter }
const PROXY = (() => {
  const at = process.argv.indexOf('--proxy')
  const name = at >= 0 ? process.argv[at + 1] : 'node'
  if (!PROXIES[name]) {
    process.stderr.write(`demo: --proxy takes ${Object.keys(PROXIES).join(' or ')}; got ${name}\n`)
    process.exit(2)
  }
  return name
})()
if (HOST_NETWORK) {
  // One address for both, as one network namespace gives them.
  ADDRESSES.v2 = ADDRESSES.v1
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const randomGroup = () => `239.192.${100 + Math.floor(Math.random() * 100)}.${1 + Math.floor(Math.random() * 254)}`

/** What an instance reports over IPC, as a timeline line. */
function describeEvent(instance, message) {
  const { host, port } = instance.config
  switch (message.event) {
    case 'ready':
      return `ready: serving on ${host}:${port}, announced UP and its startedAt (${message.startedAt})`
    case 'draining':
      return `heard a younger instance; shutdown callback announces DOWN and waits for the routers (${message.inFlight} request(s) in flight)`
    case 'routersDone':
      return message.acknowledged.length
        ? `DRAINED from ${message.acknowledged.join(', ')} after ${message.waitedMs.toFixed(1)} ms: no new requests come here; closing`
        : `no router answered${message.timedOut.length ? ` (timed out: ${message.timedOut.join(', ')})` : ''}; closing`
    case 'drained':
      return `drained: listener closed, every request answered (${message.served} served in all); callback returns`
    case 'handoverDone':
      return message.completeFile
        ? `handed over to startedAt ${message.heardStartedAt}: library wrote ${message.completeFile}`
        : `handover finished without a complete file: ${message.error}`
    default:
      return JSON.stringify(message)
  }
}

async function runDemo(timeline, workdir) {
  const handoverPort = await freeUdpPort()
  const statusPort = await freeUdpPort()
  const routerPort = await freeUdpPort()
  const servicePort = await freeTcpPortOn(Object.values(ADDRESSES))
  const group = randomGroup()
  const nameOf = (address) => Object.keys(ADDRESSES).find((name) => ADDRESSES[name] === address) || address
  const configFor = (version, warmupMs) => {
    fs.mkdirSync(path.join(workdir, version))
    const completePath = path.join(workdir, version, 'handover-complete')
    const { workMs, drainTimeoutMs } = TIMING
    const host = ADDRESSES[version]
    return {
      version,
      host,
      port: servicePort,
      handoverPort,
      statusPort,
      routerPort,
      group,
      completePath,
      warmupMs,
      workMs,
      drainTimeoutMs,
      hostNetwork: HOST_NETWORK,
    }
  }
  timeline.log('demo', `handover ${group}:${handoverPort}, status ${group}:${statusPort} on lo; service port ${servicePort}`)

  const reports = new EventEmitter()
  const facts = { v1: {}, v2: {} }
  const onEvent = (instance, message) => {
    facts[instance.name][message.event] = message
    timeline.log(instance.name, describeEvent(instance, message))
    reports.emit(`${instance.name}:${message.event}`, message)
  }
  /** Resolves with the time the instance became ready; rejects if it exits first. */
  const ready = (instance) =>
    Promise.race([
      once(reports, `${instance.name}:ready`).then(() => timeline.seconds()),
      instance.exited.then(() => Promise.reject(new Error(`${instance.name} exited before it was ready`))),
    ])

  const frontendPort = PROXY === 'haproxy' ? await freeTcpPortOn(['127.0.0.1']) : 0
  const router = HOST_NETWORK
    ? null
    : new PROXIES[PROXY]({ service: SERVICE, servicePort, statusPort, routerPort, group, timeline, nameOf, workdir, frontendPort })
  const url = router ? await router.start() : `http://${ADDRESSES.v1}:${servicePort}/`
  const proxyName = PROXY === 'haproxy' ? 'HAProxy' : 'the demo proxy'
  timeline.log(router ? 'router' : 'demo', router ? `${proxyName} on ${url}; the router follows the status channel` : `host network: both instances listen on ${url} (listenShared), no router`)
  const { handoverTimeoutMs, killGraceMs } = TIMING
  const supervisor = new Supervisor({ timeline, handoverTimeoutMs, killGraceMs })
  const client = new Client({ url, concurrency: CONCURRENCY, timeline })

  try {
    const v1 = supervisor.start(configFor('v1', TIMING.v1WarmupMs), onEvent)
    await ready(v1)
    while (router && router.routed() === 0) await sleep(5) // the proxy routes to v1
    client.start()
    await sleep(TIMING.v1AloneMs)

    timeline.log('supervisor', `update: v2 starts next to v1 (handover timeout ${TIMING.handoverTimeoutMs} ms)`)
    const update = supervisor.update(v1, configFor('v2', TIMING.v2WarmupMs), onEvent)
    const v2ReadyAt = ready(update.next)
    const killedBy = await update.ended
    const handoverSeconds = timeline.seconds() - (await v2ReadyAt)
    await sleep(TIMING.v2AloneMs)

    await client.stop()
    timeline.log('client', 'stopped')
    await supervisor.kill(update.next, 'demo over')
    return { client, router, facts, v1, killedBy, handoverSeconds }
  } finally {
    await client.stop()
    supervisor.killAll()
    if (router) await router.close()
  }
}

function printSummary({ client, router, facts, v1, killedBy, handoverSeconds }) {
  const done = facts.v1.handoverDone
  const rows = [
    ['requests served by v1', client.servedBy.v1 || 0],
    ['requests served by v2', client.servedBy.v2 || 0],
    ['requests failed', client.failed + (client.failures.length ? ` (${client.failures.join(', ')})` : '')],
    ['proxy', router ? (PROXY === 'haproxy' ? 'HAProxy (Runtime API)' : 'the demo proxy (in process)') : 'none (--host-network)'],
    [
      'v1 complete file',
      // What the supervisor saw: it may stop v1 before v1's own report of the
      // handover reaches the demo, as the real supervisor would.
      killedBy === 'complete-file'
        ? `written (${v1.config.completePath})`
        : `not written (${done ? done.error : 'no handover'})`,
    ],
    [
      'v1 stopped by',
      killedBy === 'complete-file'
        ? `supervisor, ${v1.exit.signal} after its handover-complete file appeared`
        : `supervisor, ${v1.exit.signal} at the handover timeout`,
    ],
    ['handover took', `${handoverSeconds.toFixed(3)} s from v2 ready to v1 gone`],
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  process.stdout.write(`\nsummary\n${rows.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`).join('\n')}\n`)
}

async function main() {
  const timeline = createTimeline()
  const watchdog = setTimeout(() => {
    timeline.log('demo', `gave up after ${TIMING.watchdogMs} ms`)
    process.exit(1)
  }, TIMING.watchdogMs)
  watchdog.unref()
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-demo-'))
  try {
    const result = await runDemo(timeline, workdir)
    printSummary(result)
    process.exitCode = result.client.failed === 0 ? 0 : 1
  } catch (error) {
    timeline.log('demo', `failed: ${error.stack || error}`)
    process.exitCode = 1
  } finally {
    clearTimeout(watchdog)
    fs.rmSync(workdir, { recursive: true, force: true })
  }
}

main()
