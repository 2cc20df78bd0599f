'use strict'
// One scenario of `npm run hosts` (scripts/hosts.js), run by the host under
// test: Node, Bun or Deno. CommonJS with a .cjs name so that every host runs
// it as it is (`node f.cjs`, `bun f.cjs`, `deno run … f.cjs`). The parent
// copies it into a consumer folder whose node_modules/handover-native holds
// the package as npm installs it, so it loads the package the way a service
// does: require('handover-native').
//
//   <host> scenario.cjs '<spec as JSON>'
//
// It prints JSON lines on stdout: progress events ({"event":"listening"} …)
// that the parent may wait for, and one result line {"result":{...}} with
// "ok" and, when not ok, "reason". Log lines of the package are kept at
// level error and go to stderr. It never calls process.exit() after a
// success: the parent checks that the process ends by itself.
//
// Roles (spec.role):
//   load      require() gives every export
//   one       old and young peer in this process: the old one hands over
//   old       a listening peer; hands over when it hears a younger one
//   young     a broadcasting peer; closes once the old one's complete file exists
//   status    a listener hears another object's UP, then its DOWN
//
// Every peer and status object is pinned to unicast 127.0.0.1 on spec.port,
// so that no packet leaves the machine.

const fs = require('node:fs')

const spec = JSON.parse(process.argv[process.argv.length - 1])
const EXPORTS = ['HandoverPeer', 'HandoverStatus', 'describePacket', 'encodeStatusMessage']
const TIMEOUT_MS = spec.timeoutMs || 5000

function host() {
  if (typeof Bun !== 'undefined') return `bun ${Bun.version}`
  if (typeof Deno !== 'undefined') return `deno ${Deno.version.deno}`
  return `node ${process.versions.node}`
}

const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n')
const event = (name, extra = {}) => emit({ event: name, ...extra })

/** The one result line; an exit code only on failure (success must end by itself). */
function finish(result) {
  emit({ result: { host: host(), role: spec.role, ...result } })
  if (!result.ok) process.exitCode = 1
}

function options(extra = {}) {
  return { address: '127.0.0.1', port: spec.port, logLevel: 'error', ...extra }
}

/** A ref'd timer that fails the scenario unless cleared. */
function deadline(what, cleanup) {
  return setTimeout(() => {
    finish({ ok: false, reason: `timed out after ${TIMEOUT_MS} ms ${what}` })
    cleanup()
  }, TIMEOUT_MS)
}

function load() {
  const lib = require('handover-native')
  const missing = EXPORTS.filter((name) => typeof lib[name] !== 'function')
  if (missing.length) return finish({ ok: false, reason: `missing exports: ${missing.join(', ')}` })
  finish({ ok: true, napi: process.versions.napi })
}

/**
 * Listens as the old peer; resolves with what the handover did. `closeOthers`
 * runs once the handover is over (or has failed), so that nothing else keeps
 * the process alive.
 */
function listenAsOld(lib, closeOthers) {
  const completeFile = spec.completeFile
  const peer = new lib.HandoverPeer(new Date(spec.oldStartedAt), { id: 'old' }, options({ handoverCompletePath: completeFile }))
  let callbacks = 0
  let eventReport = null
  peer.on('handover', (report) => {
    eventReport = report
  })
  const timer = deadline('waiting for the handover', () => {
    peer.close()
    closeOthers()
  })
  peer.startListening(async () => {
    callbacks += 1
  })
  event('listening')
  peer.handover.then((report) => {
    clearTimeout(timer)
    closeOthers()
    // 'handover' is emitted before the promise resolves, or in the same turn.
    setImmediate(() => {
      const problems = []
      if (callbacks !== 1) problems.push(`shutdown callback ran ${callbacks} times`)
      if (!peer.shuttingDown) problems.push('shuttingDown is false')
      if (!fs.existsSync(completeFile)) problems.push('complete file not written')
      if (!eventReport) problems.push("no 'handover' event")
      if (report.completeFileError) problems.push(`completeFileError: ${report.completeFileError}`)
      if (report.callbackError) problems.push(`callbackError: ${report.callbackError}`)
      finish(problems.length ? { ok: false, reason: problems.join('; ') } : { ok: true, heardStartedAt: String(report.heardStartedAt) })
    })
  })
  return peer
}

function broadcastAsYoung(lib, extra = {}) {
  const peer = new lib.HandoverPeer(
    new Date(spec.youngStartedAt),
    { id: 'young' },
    options({ handoverCompletePath: spec.youngCompleteFile, ...extra }),
  )
  peer.startBroadcasting()
  event('broadcasting')
  return peer
}

function one() {
  const lib = require('handover-native')
  let young = null
  listenAsOld(lib, () => young && young.close())
  young = broadcastAsYoung(lib)
}

function old() {
  listenAsOld(require('handover-native'), () => {})
}

/** Broadcasts until the old peer's complete file exists, then closes. */
function young() {
  const lib = require('handover-native')
  const peer = broadcastAsYoung(lib)
  const started = Date.now()
  const poll = setInterval(() => {
    const seen = fs.existsSync(spec.completeFile)
    if (!seen && Date.now() - started < TIMEOUT_MS) return
    clearInterval(poll)
    peer.close()
    const problems = []
    if (!seen) problems.push(`the old peer's complete file did not appear within ${TIMEOUT_MS} ms`)
    if (peer.shuttingDown) problems.push('the young peer is shutting down')
    if (fs.existsSync(spec.youngCompleteFile)) problems.push('the young peer wrote a complete file')
    finish(problems.length ? { ok: false, reason: problems.join('; ') } : { ok: true, sent: peer.stats().sent })
  }, 20)
}

function status() {
  const lib = require('handover-native')
  const startedAt = new Date(spec.youngStartedAt)
  const listener = new lib.HandoverStatus(new Date(spec.oldStartedAt), 'hosts-listener', ['127.0.0.1'], { id: 'listener' }, options())
  const sender = new lib.HandoverStatus(startedAt, 'hosts-sender', ['127.0.0.1'], { id: 'sender' }, options())
  const heard = []
  const closeBoth = () => {
    sender.close()
    listener.close()
  }
  const timer = deadline('waiting for UP then DOWN', closeBoth)
  listener.startListening((message) => {
    if (message.serviceName !== 'hosts-sender') return
    if (heard[heard.length - 1] !== message.status) heard.push(message.status)
    if (message.status === 'UP' && heard.length === 1) {
      sender.startBroadcastingServiceDown()
    } else if (message.status === 'DOWN') {
      clearTimeout(timer)
      closeBoth()
      const problems = []
      if (heard[0] !== 'UP') problems.push(`heard ${heard.join(', ')}: not UP first`)
      if (typeof message.timestamp !== 'bigint' || message.timestamp !== BigInt(startedAt.getTime())) {
        problems.push(`timestamp ${String(message.timestamp)} (${typeof message.timestamp}), expected ${startedAt.getTime()}n`)
      }
      if (String(message.addresses) !== '127.0.0.1') problems.push(`addresses ${JSON.stringify(message.addresses)}`)
      finish(problems.length ? { ok: false, reason: problems.join('; ') } : { ok: true, heard })
    }
  })
  event('listening')
  sender.startBroadcastingServiceUp()
}

const ROLES = { load, one, old, young, status }

try {
  ROLES[spec.role]()
} catch (error) {
  finish({ ok: false, reason: `threw ${(error && error.stack) || error}` })
}
