'use strict'
// Runs an old and a new peer in two child processes (test-support/child.js)
// and reports what happened, as one JSON line on stdout. Meant to run inside
// a private network namespace (see isolated.js) so that the JS original can
// take part.
//
//   node pair.js '{"old":{"impl":...,"options":{}}, "new":{...}, "port":1536, "watchMs":1500}'

const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')

const spec = JSON.parse(process.argv[2])

function startChild(role, startedAt) {
  const config = { impl: 'ours', options: {}, env: {}, ...spec[role], startedAt }
  config.options = { port: spec.port, ...config.options }
  config.env = { SHUTDOWN_PORT: String(spec.port), ...config.env }
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const events = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let event
    try {
      event = JSON.parse(line)
    } catch {
      return // a log line of the original's logger
    }
    if (!event || typeof event.event !== 'string') return
    events.push(event)
    waiters.filter((w) => w.name === event.event).forEach((w) => w.resolve(event))
  })
  return {
    events,
    send: (cmd) => child.stdin.write(JSON.stringify({ cmd }) + '\n'),
    next: (name, timeoutMs) =>
      new Promise((resolve, reject) => {
        const seen = events.find((e) => e.event === name)
        if (seen) return resolve(seen)
        const timer = setTimeout(() => reject(new Error(`${role}: no ${name} within ${timeoutMs} ms`)), timeoutMs)
        waiters.push({ name, resolve: (e) => (clearTimeout(timer), resolve(e)) })
      }),
    exit: () => child.kill('SIGKILL'),
  }
}

async function main() {
  const now = Date.now()
  const old = startChild('old', now - 60_000)
  const young = startChild('new', now)
  const result = { oldCallback: false, newCallback: false }
  try {
    await Promise.all([old.next('ready', 10_000), young.next('ready', 10_000)])
    old.send('listen')
    young.send('listen')
    await Promise.all([old.next('listening', 5000), young.next('listening', 5000)])
    old.send('broadcast')
    await new Promise((r) => setTimeout(r, 300))
    young.send('broadcast')
    const broadcasting = await young.next('broadcasting', 5000)
    const callback = await old.next('callback', spec.timeoutMs || 15_000).catch(() => null)
    if (callback) {
      result.oldCallback = true
      result.latencyUs = Number(BigInt(callback.at) - BigInt(broadcasting.at)) / 1000
      result.shuttingDownInCallback = callback.shuttingDown
    }
    await new Promise((r) => setTimeout(r, spec.watchMs || 1500))
    result.newCallback = young.events.some((e) => e.event === 'callback')
    result.oldCallbacks = old.events.filter((e) => e.event === 'callback').length
  } catch (error) {
    result.error = String(error)
  } finally {
    old.exit()
    young.exit()
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main()
