'use strict'
// One flood: a listening peer (listener.js) in one process, the flooder in
// another, both children of this coordinator (so in its network namespace).
// Then one younger announcement checks that the peer still hands over.

const fs = require('node:fs')
const path = require('node:path')
const dgram = require('node:dgram')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { runMain } = require('./ipc.js')
const { announcement } = require('./packets.js')
const { withTimeout } = require('./util.js')

const GROUP = '239.192.16.16' // both implementations' default
const STEP_TIMEOUT_MS = 10_000
const RESEND_MS = 100
const HANDOVER_TIMEOUT_MS = 2_000

/** The listener process and a way to await its next message of a type. */
function startListener(config) {
  const child = spawn(process.execPath, [path.join(__dirname, 'listener.js'), JSON.stringify(config)], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-2000)
  })
  // 'close' waits for stderr to be read to its end, unlike 'exit'.
  const exited = once(child, 'close').then(([code, signal]) => ({ code, signal, stderr: stderr.trim() }))
  const next = (type) =>
    withTimeout(
      new Promise((resolve, reject) => {
        const onMessage = (message) => {
          if (message.type !== type) return
          child.off('message', onMessage)
          resolve(message)
        }
        child.on('message', onMessage)
        exited.then((exit) => reject(Object.assign(new Error('listener exited'), { exit })))
      }),
      STEP_TIMEOUT_MS,
      `listener '${type}'`,
    )
  return { child, next, exited }
}

function runFlooder({ command, args }, kind, rate, durationMs, port, olderThanMs) {
  const child = spawn(command, [...args, GROUP, port, kind, rate, durationMs, olderThanMs].map(String), {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  return once(child, 'close').then(([code]) => {
    if (code !== 0) throw new Error(`flooder exited with code ${code}`)
    return JSON.parse(output)
  })
}

/** Asks the listener to exit (so it cleans up after itself); kills it if it does not. */
async function stopListener(listener) {
  if (listener.child.connected) listener.child.send({ cmd: 'exit' })
  if (!(await exitedWithin(listener, 2000))) listener.child.kill('SIGKILL')
}

/** How the listener exited, if it did within `ms`; else null. */
function exitedWithin(listener, ms) {
  return Promise.race([listener.exited, new Promise((resolve) => setTimeout(resolve, ms, null))])
}

/** Kernel UDP counters of this network namespace (meaningful only in a private one). */
function udpCounters() {
  const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
  const names = lines[0].split(/\s+/).slice(1)
  const values = lines[1].split(/\s+/).slice(1).map(Number)
  return Object.fromEntries(names.map((name, i) => [name, values[i]]))
}

/** Sends a younger announcement until the listener's callback runs; ms from the first send, or null. */
async function handsOver(listener, startedAt, port, timeoutMs) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, resolve))
  socket.setMulticastInterface('127.0.0.1')
  const packet = announcement(startedAt + 1000)
  const start = process.hrtime.bigint()
  const send = () => socket.send(packet, port, GROUP)
  send()
  const timer = setInterval(send, RESEND_MS)
  try {
    const { at } = await withTimeout(listener.next('handover'), timeoutMs, 'handover after the flood')
    return Number(BigInt(at) - start) / 1e6
  } catch {
    return null
  } finally {
    clearInterval(timer)
    socket.close()
  }
}

async function main({ impl, kind, rate, durationMs, port, flooder, isolated }) {
  const startedAt = Date.now()
  const listener = startListener({ impl, port, startedAt })
  try {
    await listener.next('ready')
    const countersBefore = isolated ? udpCounters() : null
    const started = listener.next('started')
    listener.child.send({ cmd: 'start' })
    await started
    const flood = await runFlooder(flooder, kind, rate, durationMs, port, startedAt)
    const crashed = await exitedWithin(listener, 50)
    if (crashed) return { flood, crashed }
    const stopped = listener.next('stopped')
    listener.child.send({ cmd: 'stop' })
    const figures = await stopped
    const countersAfter = isolated ? udpCounters() : null
    const handoverMs = await handsOver(listener, startedAt, port, HANDOVER_TIMEOUT_MS)
    const udp = countersAfter && {
      delivered: countersAfter.InDatagrams - countersBefore.InDatagrams,
      droppedReceiveBufferFull: countersAfter.RcvbufErrors - countersBefore.RcvbufErrors,
    }
    return { flood, listener: figures, udp, handoverMs }
  } finally {
    await stopListener(listener)
  }
}

runMain(main)
