'use strict'
// Checks of the public API on a foreign build, one process, default
// settings (the multicast groups and ports a device uses), inside a private
// network namespace. Jest itself does not run under qemu-user (its native
// module resolver finds nothing there), so the emulated rows run these
// instead. Prints one JSON line: {"checks":[{"name","ok","detail"}]}, then
// closes everything and must exit on its own: the caller checks that too.

const dgram = require('node:dgram')
const assert = require('node:assert')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

// Never the real /tmp/balena: on a device that would end this container.
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-smoke-'))
process.env.BALENA_SERVICE_HANDOVER_COMPLETE_PATH = path.join(folder, 'handover-complete')

const { HandoverPeer, HandoverStatus, describePacket, encodeStatusMessage } = require('../../index.js')

const GROUP = '239.192.16.16'
const checks = []

async function check(name, body) {
  try {
    const detail = await body()
    checks.push({ name, ok: true, detail: detail || '' })
  } catch (error) {
    checks.push({ name, ok: false, detail: String(error.message || error).split('\n')[0] })
  }
}

function waitFor(predicate, what, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const timer = setInterval(() => {
      const value = predicate()
      if (value) {
        clearInterval(timer)
        resolve(value)
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer)
        reject(new Error(`timed out waiting for ${what}`))
      }
    }, 20)
  })
}

function sendTo(port, bytes) {
  const socket = dgram.createSocket('udp4')
  return new Promise((resolve, reject) =>
    socket.send(bytes, port, GROUP, (error) => {
      socket.close()
      if (error) reject(error)
      else resolve()
    }),
  )
}

function v1(startedAtMs) {
  const packet = Buffer.alloc(9)
  packet[0] = 1
  packet.writeBigInt64BE(BigInt(startedAtMs), 1)
  return packet
}

async function main() {
  const open = []
  await check('codecs', () => {
    const described = describePacket(v1(1700000000000))
    assert.strictEqual(described.kind, 'announcement')
    assert.strictEqual(described.timestamp, 1700000000000)
    assert.strictEqual(describePacket(Buffer.from([7])).kind, 'malformed')
    assert.strictEqual(encodeStatusMessage(1700000000000, 'api', ['10.0.0.2'], 'UP').length, 120)
  })

  const peer = new HandoverPeer(new Date())
  open.push(peer)
  let callbacks = 0
  await check('peer listens on the default group', () => {
    peer.startListening(async () => {
      callbacks++
    })
    return `${peer.shutdownBroadcastAddress}:${peer.shutdownPort}`
  })
  await check('a malformed packet is dropped and counted', async () => {
    await sendTo(peer.shutdownPort, Buffer.from([0x07, 0x01]))
    await waitFor(() => peer.stats().malformed >= 1, 'the malformed counter')
    assert.strictEqual(peer.shuttingDown, false)
  })
  await check('an older announcement is ignored', async () => {
    await sendTo(peer.shutdownPort, v1(Date.now() - 3_600_000))
    await waitFor(() => peer.stats().older >= 1, 'the older counter')
    assert.strictEqual(callbacks, 0)
  })
  await check('a younger announcement hands over once', async () => {
    const younger = v1(Date.now() + 60_000)
    await sendTo(peer.shutdownPort, younger)
    await sendTo(peer.shutdownPort, younger)
    await peer.handover
    await waitFor(() => peer.stats().accepted >= 2, 'both announcements')
    assert.strictEqual(callbacks, 1)
    assert.strictEqual(peer.shuttingDown, true)
    assert.ok(fs.existsSync(process.env.BALENA_SERVICE_HANDOVER_COMPLETE_PATH), 'the complete file was written')
    const refused = peer.stats().refusedSocketOptions
    return refused.length ? `listening without ${refused.join(', ')}` : ''
  })

  const status = new HandoverStatus(new Date(), 'smoke', ['10.0.0.2'])
  open.push(status)
  const heard = []
  await check('status UP then DOWN on the default group', async () => {
    status.startListening(async (message) => {
      heard.push(message.status)
    })
    status.startBroadcastingServiceUp()
    await waitFor(() => heard.includes('UP'), 'UP')
    status.startBroadcastingServiceDown()
    await waitFor(() => heard.includes('DOWN'), 'DOWN')
  })

  for (const channel of open) channel.close()
  fs.rmSync(folder, { recursive: true, force: true })
  process.stdout.write(JSON.stringify({ checks }) + '\n')
}

main()
