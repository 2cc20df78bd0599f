'use strict'
// Handovers across two processes: for each, a fresh old process listens and
// a fresh young process calls startBroadcasting(). child.js stamps both
// moments with process.hrtime.bigint() (CLOCK_MONOTONIC, one clock for
// every process on the machine), so the latency is callback − broadcast.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { runMain } = require('./ipc.js')
const { ChildPeer } = require('./child-peer.js')

const STEP_TIMEOUT_MS = 5_000
const CALLBACK_TIMEOUT_MS = 12_000 // more than one heartbeat of the original
// child.js reports 'listening' when startListening() returns; the original
// binds and joins a moment later, and an old instance has listened for a
// while anyway.
const SETTLE_MS = 50

function childConfig(impl, startedAt, port, folder) {
  return {
    impl,
    startedAt,
    options: { port, networkMode: 'host', networkInterface: 'lo', handoverCompletePath: path.join(folder, 'complete') },
    env: { SHUTDOWN_PORT: String(port) },
    exitWithParent: true, // no peer outlives a benchmark that dies
  }
}

async function handover(impl, startedAt, port, folder) {
  const old = new ChildPeer(childConfig(impl, startedAt, port, folder))
  const young = new ChildPeer(childConfig(impl, startedAt + 1, port, folder))
  try {
    await Promise.all([old.next('ready', STEP_TIMEOUT_MS), young.next('ready', STEP_TIMEOUT_MS)])
    old.command('listen')
    await old.next('listening', STEP_TIMEOUT_MS)
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    young.command('broadcast')
    const [sent, called] = await Promise.all([
      young.next('broadcasting', STEP_TIMEOUT_MS),
      old.next('callback', CALLBACK_TIMEOUT_MS),
    ])
    return Number(BigInt(called.at) - BigInt(sent.at))
  } finally {
    await Promise.all([old.exit(), young.exit()])
  }
}

async function main({ impl, count, basePort, ports }) {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-bench-'))
  const base = Date.now() - 10 * 60_000
  const latenciesNs = []
  try {
    for (let i = 0; i < count; i++) {
      latenciesNs.push(await handover(impl, base + 2 * i, basePort + (i % ports), folder))
    }
  } finally {
    fs.rmSync(folder, { recursive: true, force: true })
  }
  return { latenciesNs }
}

runMain(main)
