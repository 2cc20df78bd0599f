'use strict'
// Runs a command in a private network namespace of its own (as root):
// loopback up and the multicast range routed to it, so nothing it sends can
// leave this machine. The JS original always sends through the default
// route, so this is the only way tests and benchmarks run it.

const { spawn, spawnSync } = require('node:child_process')

const SETUP = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$0" "$@"'

/** True when this process may create network namespaces. */
function namespacesAvailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false
  return spawnSync('unshare', ['-n', 'sh', '-c', SETUP, 'true'], { stdio: 'ignore' }).status === 0
}

/** `spawn` in a fresh, private network namespace. */
function spawnIsolated(command, args = [], options = {}) {
  return spawn('unshare', ['-n', 'sh', '-c', SETUP, command, ...args], options)
}

/** The arguments that run `command args...` inside an existing namespace path (from `ip netns`). */
function inNamespace(name, command, args = []) {
  return ['ip', ['netns', 'exec', name, command, ...args]]
}

module.exports = { namespacesAvailable, spawnIsolated, inNamespace, SETUP }
