// The ESM scenario of `npm run hosts` (scripts/hosts.js): an ES module of a
// consumer imports the package by name, as `import { HandoverPeer } from
// 'handover-native'` in a service would, on Node, Bun or Deno. Prints one
// result line {"result":{...}} with "ok" and, when not ok, "reason".

import { createRequire } from 'node:module'

import handover, { HandoverPeer, HandoverStatus, describePacket, encodeStatusMessage } from 'handover-native'

const require = createRequire(import.meta.url)
const required = require('handover-native')
const imported = { HandoverPeer, HandoverStatus, describePacket, encodeStatusMessage }

function host() {
  if (typeof Bun !== 'undefined') return `bun ${Bun.version}`
  if (typeof Deno !== 'undefined') return `deno ${Deno.version.deno}`
  return `node ${process.versions.node}`
}

const problems = []
for (const [name, value] of Object.entries(imported)) {
  if (typeof value !== 'function') problems.push(`${name} is ${typeof value}`)
  else if (required[name] !== value || handover[name] !== value) problems.push(`${name} is not the export require() gives`)
}
const packet = describePacket(encodeStatusMessage(1700000000000, 'api', ['10.0.0.1'], 'UP'))
if (packet.kind !== 'status' || packet.serviceName !== 'api' || packet.status !== 'UP') {
  problems.push(`round trip gave ${JSON.stringify(packet)}`)
}

const result = { host: host(), role: 'esm', ok: problems.length === 0 }
if (problems.length) result.reason = problems.join('; ')
process.stdout.write(JSON.stringify({ result }) + '\n')
if (problems.length) process.exitCode = 1
