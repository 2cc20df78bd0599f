'use strict'
// A real handover between two processes of a foreign build, with the
// default settings (group 239.192.16.16, port 1536, bridge mode: the default
// interface). Runs on this machine's Node inside a private network namespace
// (see emulate.js); the two peers run on the command given, e.g. qemu-user
// and an arm64 Node. Prints one JSON line with what happened.
//
//   node handover-check.js '{"node":["qemu-aarch64-static","-L",...,"node"],"addon":"/…/handover.linux-arm64-gnu.node"}'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { LineProcess } = require('../../test-support/line-process')

const CHILD = path.join(__dirname, '..', '..', 'test-support', 'child.js')
// Emulated Node starts in about a second; leave room for a slow machine.
const TIMEOUT_MS = 60_000

const spec = JSON.parse(process.argv[2])
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-cross-'))

function startPeer(role, startedAt) {
  const completePath = path.join(folder, `${role}-complete`)
  // No options: the defaults are what is being checked.
  const config = { impl: 'ours', startedAt, env: { BALENA_SERVICE_HANDOVER_COMPLETE_PATH: completePath } }
  const [command, ...prefix] = spec.node
  const child = spawn(command, [...prefix, CHILD, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HANDOVER_NATIVE_LIBRARY_PATH: spec.addon },
  })
  const peer = new LineProcess(role, child)
  peer.completePath = completePath
  return peer
}

const send = (peer, cmd) => peer.child.stdin.write(JSON.stringify({ cmd }) + '\n')

async function main() {
  const now = Date.now()
  const old = startPeer('old', now - 60_000)
  const young = startPeer('new', now)
  const result = { oldCallback: false, completeFile: false, newStillServing: false }
  try {
    await Promise.all([old.next('ready', { timeoutMs: TIMEOUT_MS }), young.next('ready', { timeoutMs: TIMEOUT_MS })])
    send(old, 'listen')
    send(young, 'listen')
    await Promise.all([old.next('listening', { timeoutMs: TIMEOUT_MS }), young.next('listening', { timeoutMs: TIMEOUT_MS })])
    send(old, 'broadcast')
    send(young, 'broadcast')
    await old.next('callback', { timeoutMs: TIMEOUT_MS })
    result.oldCallback = true
    const deadline = Date.now() + 10_000
    while (!fs.existsSync(old.completePath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    result.completeFile = fs.existsSync(old.completePath)
    send(old, 'stats')
    result.oldStats = await old.next('stats', { timeoutMs: TIMEOUT_MS })
    send(young, 'state')
    const state = await young.next('state', { timeoutMs: TIMEOUT_MS })
    result.newStillServing = !state.shuttingDown && !young.has('callback') && !fs.existsSync(young.completePath)
  } catch (error) {
    result.error = String(error.message || error).split('\n').slice(0, 6).join('\n')
  } finally {
    old.child.kill('SIGKILL')
    young.child.kill('SIGKILL')
    fs.rmSync(folder, { recursive: true, force: true })
  }
  result.ok = result.oldCallback && result.completeFile && result.newStillServing
  process.stdout.write(JSON.stringify(result) + '\n')
}

main()
