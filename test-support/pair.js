'use strict'
// Runs an old and a new peer in two child processes (test-support/child.js)
// and reports what happened, as one JSON line on stdout. Meant to run inside
// a private network namespace (see isolated.js) so that the JS original can
// take part.
//
//   node pair.js '{"old":{"impl":...,"options":{}}, "new":{...}, "port":1536, "watchMs":1500}'

const { spawn } = require('node:child_process')
const path = require('node:path')
const { LineProcess } = require('./line-process')

const spec = JSON.parse(process.argv[2])

function startChild(role, startedAt) {
  const config = { impl: 'ours', options: {}, env: {}, ...spec[role], startedAt }
  config.options = { port: spec.port, ...config.options }
  config.env = { SHUTDOWN_PORT: String(spec.port), ...config.env }
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  return new LineProcess(role, child)
}

const send = (peer, cmd) => peer.child.stdin.write(JSON.stringify({ cmd }) + '\n')

async function main() {
  const now = Date.now()
  const old = startChild('old', now - 60_000)
  const young = startChild('new', now)
  const result = { oldCallback: false, newCallback: false }
  try {
    await Promise.all([old.next('ready', { timeoutMs: 10_000 }), young.next('ready', { timeoutMs: 10_000 })])
    send(old, 'listen')
    send(young, 'listen')
    await Promise.all([old.next('listening'), young.next('listening')])
    send(old, 'broadcast')
    await new Promise((r) => setTimeout(r, 300))
    send(young, 'broadcast')
    const broadcasting = await young.next('broadcasting')
    const callback = await old.next('callback', { timeoutMs: spec.timeoutMs || 15_000 }).catch(() => null)
    if (callback) {
      result.oldCallback = true
      result.latencyUs = Number(BigInt(callback.at) - BigInt(broadcasting.at)) / 1000
      result.shuttingDownInCallback = callback.shuttingDown
    }
    await new Promise((r) => setTimeout(r, spec.watchMs || 1500))
    result.newCallback = young.has('callback')
    result.oldCallbacks = old.reports.filter((e) => e.event === 'callback').length
  } catch (error) {
    result.error = String(error)
  } finally {
    old.child.kill('SIGKILL')
    young.child.kill('SIGKILL')
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main()
