'use strict'
// Handovers between two warm processes, as on a device: the old instance's
// process has been idle for a while when the new one announces. Each
// implementation gets an old-side and a young-side process
// (workers/pair-side.js) that live for the whole run; every handover uses
// fresh peers in them. Implementations take turns handover by handover, who
// goes first flipping every turn, so drift hits them alike.

const { fork } = require('node:child_process')
const path = require('node:path')
const { runMain } = require('./ipc.js')
const { withTimeout } = require('./util.js')

const SIDE = path.join(__dirname, 'pair-side.js')
const STEP_TIMEOUT_MS = 5_000
/** Uncounted handovers per implementation first: the processes are warm, as an old instance's is. */
const WARM_UP = 10
const CALLBACK_TIMEOUT_MS = 12_000

/** A side process and a way to await its next event of a kind. */
function startSide(impl) {
  const child = fork(SIDE, [impl], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const waiting = []
  child.on('message', (message) => {
    if (message.event === 'error') throw new Error(`${impl} side: ${message.message}`)
    const index = waiting.findIndex((w) => w.event === message.event)
    if (index >= 0) waiting.splice(index, 1)[0].resolve(message)
  })
  const next = (event, ms = STEP_TIMEOUT_MS) =>
    withTimeout(new Promise((resolve) => waiting.push({ event, resolve })), ms, `${impl} side: ${event}`)
  return { child, next, ready: next('ready') }
}

async function handover({ old, young }, startedAt, port, settleMs) {
  const listening = old.next('listening')
  old.child.send({ command: 'listen', startedAt, port })
  const prepared = young.next('prepared')
  young.child.send({ command: 'prepare', startedAt: startedAt + 1, port })
  await Promise.all([listening, prepared])
  // The old process goes idle, as an old instance would be.
  await new Promise((resolve) => setTimeout(resolve, settleMs))
  const called = old.next('callback', CALLBACK_TIMEOUT_MS)
  const sent = young.next('sent')
  young.child.send({ command: 'broadcast' })
  const [{ startNs, callNs }, { atNs }] = await Promise.all([sent, called])
  const closed = [old.next('closed', CALLBACK_TIMEOUT_MS), young.next('closed')]
  old.child.send({ command: 'close', handedOver: true })
  young.child.send({ command: 'close', handedOver: false })
  await Promise.all(closed)
  return { latencyNs: Number(BigInt(atNs) - BigInt(startNs)), broadcastCallNs: Number(callNs) }
}

async function main({ impls, count, basePort, ports, settleMs = 5 }) {
  const sides = Object.fromEntries(impls.map((impl) => [impl, { old: startSide(impl), young: startSide(impl) }]))
  try {
    await Promise.all(Object.values(sides).flatMap(({ old, young }) => [old.ready, young.ready]))
    const samples = Object.fromEntries(impls.map((impl) => [impl, []]))
    const base = Date.now() - 10 * 60_000
    let trial = 0
    for (let i = -WARM_UP; i < count; i++) {
      for (const impl of i % 2 === 0 ? impls : [...impls].reverse()) {
        const sample = await handover(sides[impl], base + 2 * trial, basePort + (trial % ports), settleMs)
        if (i >= 0) samples[impl].push(sample)
        trial++
      }
    }
    const figures = (list) => ({
      latenciesNs: list.map((s) => s.latencyNs),
      broadcastCallsNs: list.map((s) => s.broadcastCallNs),
    })
    return { byImpl: Object.fromEntries(impls.map((impl) => [impl, figures(samples[impl])])) }
  } finally {
    for (const { old, young } of Object.values(sides)) for (const side of [old, young]) side.child.kill()
  }
}

runMain(main)
