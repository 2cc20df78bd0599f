'use strict'
// Helpers for tests that stay on loopback in the root namespace: options
// that pin multicast to 127.0.0.1, a raw sender, polling, temp folders.

const dgram = require('node:dgram')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const GROUP = '239.192.16.16'

/** Peer/status options that keep every packet on 127.0.0.1. */
function loopbackOptions(port, extra = {}) {
  return { port, networkMode: 'host', networkInterface: 'lo', logLevel: 'error', ...extra }
}

/** Sends raw datagrams to the group on loopback; resolves once all are sent. */
async function sendRaw(port, packets, address = GROUP) {
  const socket = dgram.createSocket('udp4')
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve))
  socket.setMulticastInterface('127.0.0.1')
  socket.setMulticastTTL(1)
  try {
    for (const packet of Array.isArray(packets) ? packets : [packets]) {
      await new Promise((resolve, reject) => socket.send(packet, port, address, (e) => (e ? reject(e) : resolve())))
    }
  } finally {
    socket.close()
  }
}

/** A 9-byte v1 announcement, as the original sends. */
function v1(startedAtMs) {
  const buffer = Buffer.alloc(9)
  buffer[0] = 1
  buffer.writeBigInt64BE(BigInt(startedAtMs), 1)
  return buffer
}

/** Polls `predicate` until it is truthy or `timeoutMs` passes. */
async function waitFor(predicate, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A fresh folder under the OS temp dir; removed by the returned cleanup. */
function tempDir(prefix = 'handover-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/** One extension field: type | length | value. */
function extensionField(type, value) {
  return Buffer.concat([Buffer.from([type, value.length]), value])
}

/** A v1 announcement (9 bytes), then "HO", extension version 1, then the fields. */
function extendedAnnouncement(startedAtMs, fields) {
  const head = Buffer.alloc(12)
  head[0] = 0x01
  head.writeBigInt64BE(BigInt(startedAtMs), 1)
  head.write('HO', 9, 'latin1')
  head[11] = 0x01
  return Buffer.concat([head, ...fields])
}

/** Collects the raw datagrams sent to the group on `port`, joined on loopback. */
async function captureOn(port) {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  const packets = []
  socket.on('message', (m) => packets.push(m))
  await new Promise((resolve) => socket.bind(port, resolve))
  socket.addMembership(GROUP, '127.0.0.1')
  return { packets, close: () => socket.close() }
}

module.exports = { GROUP, loopbackOptions, sendRaw, captureOn, v1, extensionField, extendedAnnouncement, waitFor, sleep, tempDir }
