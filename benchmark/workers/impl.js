'use strict'
// The implementations behind one small interface, so every worker drives
// ours, the original and the floor addon (benchmark/floor/, the latency
// section's yardstick) the same way.
//
// Ours is pinned to loopback (host mode on `lo`) and writes its complete
// file into a private temporary folder. The original takes its port from
// SHUTDOWN_PORT at construction, sends through the default route (so it
// only ever runs inside a private network namespace) and has no close():
// its sockets and ticker are stopped by hand. The floor joins the group on
// 127.0.0.1 and sends through it.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { once } = require('node:events')

const ROOT = path.join(__dirname, '..', '..')
const FLOOR_ADDON = path.join(__dirname, '..', 'floor', 'floor.node') // built by lib/floor.js
const GROUP = '239.192.16.16' // the default group of ours and the original

/** require() of the implementation itself; footprint.js times exactly this call. */
function requireImpl(name) {
  if (name === 'ours') return require(ROOT)
  if (name === 'original') return require('handover-lib')
  if (name === 'floor') return require(FLOOR_ADDON)
  throw new Error(`unknown implementation ${name}`)
}

/** A folder for our complete files, removed when the process exits. */
function privateFolder() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-bench-'))
  process.on('exit', () => fs.rmSync(folder, { recursive: true, force: true }))
  return folder
}

function oursAdapter(lib) {
  const completePath = path.join(privateFolder(), 'handover-complete')
  return {
    create(startedAtMs, port) {
      return new lib.HandoverPeer(new Date(startedAtMs), undefined, {
        port,
        networkMode: 'host',
        networkInterface: 'lo',
        handoverCompletePath: completePath,
      })
    },
    /** Binding and joining happen inside startListening(). */
    async listen(peer, callback) {
      peer.startListening(callback)
    },
    broadcast(peer) {
      peer.startBroadcasting()
    },
    /** Settles once the old peer has written its complete file. */
    handedOver(peer) {
      return peer.handover
    },
    close(peer) {
      peer.close()
    },
  }
}

function originalAdapter(lib) {
  return {
    create(startedAtMs, port) {
      process.env.SHUTDOWN_PORT = String(port)
      return new lib.HandoverPeer(new Date(startedAtMs))
    },
    /**
     * The original binds asynchronously and joins the group in a 'listening'
     * handler registered by startListening(), so it runs before this one.
     */
    async listen(peer, callback) {
      peer.startListening(callback)
      await once(peer.heartbeatClientSocket, 'listening')
    },
    broadcast(peer) {
      peer.startBroadcasting()
    },
    /** The original closes its listening socket as the last step of a handover. */
    handedOver(peer) {
      return once(peer.heartbeatClientSocket, 'close')
    },
    close(peer) {
      clearInterval(peer.ticker)
      for (const socket of [peer.heartbeatSenderSocket, peer.heartbeatClientSocket]) {
        try {
          socket.close()
        } catch {
          // already closed by the handover itself
        }
      }
    },
  }
}

/** The floor does nothing after the callback, so it has handed over once the callback ran. */
function floorAdapter(lib) {
  return {
    create(startedAtMs, port) {
      return new lib.FloorPeer(startedAtMs, port, GROUP, '127.0.0.1')
    },
    async listen(peer, callback) {
      peer.startListening(callback)
    },
    broadcast(peer) {
      peer.startBroadcasting()
    },
    handedOver() {
      return Promise.resolve()
    },
    close(peer) {
      peer.close()
    },
  }
}

const ADAPTERS = { ours: oursAdapter, original: originalAdapter, floor: floorAdapter }

function adapter(name, lib = requireImpl(name)) {
  return ADAPTERS[name](lib)
}

module.exports = { requireImpl, adapter, ROOT }
