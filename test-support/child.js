'use strict'
// A peer in a child process, driven by the parent over stdin/stdout with
// one JSON object per line. Used by tests and benchmarks to run our peer
// or the JS original (`handover-lib`) side by side.
//
//   node child.js '{"impl":"ours"|"original","startedAt":ms,"options":{...},"env":{...}}'
//
// Commands on stdin: {"cmd":"listen"} {"cmd":"broadcast"} {"cmd":"close"} {"cmd":"exit"}
//                    {"cmd":"stats"} {"cmd":"state"}
// Reports on stdout: {"event":"ready"} {"event":"listening"} {"event":"broadcasting", "at": hrtime ns}
//                    {"event":"callback","at": hrtime ns} {"event":"stats",...}
//                    {"event":"state","shuttingDown":bool,"instanceId":...}
// Optional config: "reportHandover": true reports {"event":"handover",...the
// payload of peer.handover} (ours only); "exitWithParent": true exits when
// stdin closes, so a parent that dies leaves no peer behind.

const readline = require('node:readline')

const config = JSON.parse(process.argv[2])
Object.assign(process.env, config.env || {})

function report(event, extra = {}) {
  process.stdout.write(JSON.stringify({ event, ...extra }) + '\n')
}

const now = () => process.hrtime.bigint().toString()
// Keep stdout for reports: console output goes to stderr. (The original's
// logger may still write to stdout: parents read only lines that parse.)
console.log = (...args) => process.stderr.write(args.join(' ') + '\n')
console.info = console.warn = console.debug = console.log

const lib = config.impl === 'original' ? require('handover-lib') : require('../index.js')
const peer = new lib.HandoverPeer(new Date(config.startedAt), undefined, config.impl === 'original' ? undefined : config.options)

const commands = {
  listen() {
    peer.startListening(async () => {
      report('callback', { at: now(), shuttingDown: peer.shuttingDown })
      if (config.callbackDelayMs) await new Promise((r) => setTimeout(r, config.callbackDelayMs))
    })
    report('listening')
  },
  broadcast() {
    const at = now()
    peer.startBroadcasting()
    report('broadcasting', { at })
  },
  close() {
    if (typeof peer.close === 'function') peer.close()
    report('closed')
  },
  stats() {
    report('stats', typeof peer.stats === 'function' ? peer.stats() : {})
  },
  state() {
    report('state', { shuttingDown: peer.shuttingDown, instanceId: peer.instanceId })
  },
  exit() {
    process.exit(0)
  },
}

if (config.reportHandover && peer.handover) peer.handover.then((payload) => report('handover', payload))

const input = readline.createInterface({ input: process.stdin })
input.on('line', (line) => {
  if (!line.trim()) return
  const { cmd } = JSON.parse(line)
  commands[cmd]()
})
if (config.exitWithParent) input.on('close', () => process.exit(0))
report('ready', { pid: process.pid })
