'use strict'
// The two implementations behind one small interface, so every worker
// drives ours and the original the same way.
//
// Ours is pinned to loopback (host mode on `lo`) and writes its complete
// file into a private temporary folder. The original takes its port from
// SHUTDOWN_PORT at construction, sends through the default route (so it
// only ever runs inside a private network namespace) and has no close():
// its sockets and ticker are stopped by hand.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { once } = require('node:events')

const ROOT = path.join(__dirname, '..', '..')

/** require() of the implementation itself; footprint.js times exactly this call. */
function requireImpl(name) {
  if (name === 'ours') return require(ROOT)
  if (name === 'original') return require('handover-lib')
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

function adapter(name, lib = requireImpl(name)) {
  return name === 'ours' ? oursAdapter(lib) : originalAdapter(lib)
}

module.exports = { requireImpl, adapter, ROOT }
