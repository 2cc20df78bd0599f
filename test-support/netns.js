'use strict'
// Network topologies for scenario tests, built from named network
// namespaces (`ip netns`): Linux bridges, veth pairs, addresses and
// multicast routes. Everything a topology makes lives inside namespaces it
// created, so no packet of a test can leave this machine and nothing in the
// root namespace changes. `destroy()` kills the processes it started and
// deletes its namespaces (their interfaces go with them); a process 'exit'
// hook deletes what is left when the process exits first, and namespaces
// left by a run that was killed outright are swept by the next one.

const { spawn, spawnSync } = require('node:child_process')
const crypto = require('node:crypto')

/** Every namespace name starts with this, then the pid of the process that made it. */
const PREFIX = 'hoscn'
const MULTICAST = '224.0.0.0/4'

/** Namespaces of this module instance not deleted yet, for the exit hook. */
const live = new Set()
/** Jest loads this module once per test file, all in one worker process: tell them apart. */
const INSTANCE = crypto.randomBytes(3).toString('hex')
let topologies = 0

function ip(args) {
  const result = spawnSync('ip', args, { encoding: 'utf8' })
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(' ')} failed: ${(result.stderr || String(result.error)).trim()}`)
  }
  return result.stdout
}

function deleteNamespace(name) {
  spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' })
  live.delete(name)
}

function processAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === 'EPERM'
  }
}

/** Deletes namespaces of earlier runs whose process is gone (a run killed by SIGKILL has no exit hook). */
function sweepStale() {
  const pattern = new RegExp(`^${PREFIX}-(\\d+)-\\S+`)
  for (const line of ip(['netns', 'list']).split('\n')) {
    const match = pattern.exec(line)
    if (match && Number(match[1]) !== process.pid && !processAlive(Number(match[1]))) {
      deleteNamespace(match[0])
    }
  }
}

process.on('exit', () => [...live].forEach(deleteNamespace))

/** True when this process may build topologies (root, with `ip netns` and `unshare`). */
function topologiesAvailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false
  return spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0
}

/**
 * A set of namespaces, called by role ('br', 'api-old', 'devA' …), with the
 * links between them. Roles are short names; the namespace names are unique
 * per process and topology.
 */
class Topology {
  constructor(tag) {
    if (topologies === 0) sweepStale()
    this.prefix = `${PREFIX}-${process.pid}-${INSTANCE}${++topologies}${tag ? `-${tag}` : ''}`
    this.namespaces = new Map()
    this.children = new Set()
    this.cables = 0
  }

  /** Creates a namespace with loopback up. */
  addNamespace(role) {
    if (this.namespaces.has(role)) throw new Error(`namespace role ${role} exists already`)
    const name = `${this.prefix}-${role}`
    ip(['netns', 'add', name])
    live.add(name)
    this.namespaces.set(role, name)
    this.run(role, ['link', 'set', 'lo', 'up'])
    return name
  }

  /** The namespace name of a role. */
  name(role) {
    const name = this.namespaces.get(role)
    if (!name) throw new Error(`no namespace for role ${role}`)
    return name
  }

  /** Runs `ip args…` inside the namespace of `role`. */
  run(role, args) {
    return ip(['-n', this.name(role), ...args])
  }

  /**
   * A Linux bridge, up, with an optional address. Multicast snooping is off,
   * so the bridge floods the group to every port the way an unmanaged switch
   * does, whatever IGMP reports it has or has not seen yet.
   */
  addBridge(role, bridge, cidr) {
    this.run(role, ['link', 'add', bridge, 'type', 'bridge', 'mcast_snooping', '0'])
    if (cidr) this.run(role, ['address', 'add', cidr, 'dev', bridge])
    this.run(role, ['link', 'set', bridge, 'up'])
  }

  /**
   * A veth pair: `ifname` (with an optional address) in the namespace of
   * `role`, its peer plugged into `bridge` in the namespace of `bridgeRole`.
   */
  plug(role, ifname, { bridgeRole, bridge, cidr }) {
    const port = `p${++this.cables}`
    this.run(bridgeRole, ['link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', this.name(role)])
    this.run(bridgeRole, ['link', 'set', port, 'master', bridge])
    this.run(bridgeRole, ['link', 'set', port, 'up'])
    if (cidr) this.run(role, ['address', 'add', cidr, 'dev', ifname])
    this.run(role, ['link', 'set', ifname, 'up'])
  }

  /** Routes the multicast range out of `dev`: where a container's default route would send it. */
  routeMulticast(role, dev) {
    this.run(role, ['route', 'add', MULTICAST, 'dev', dev])
  }

  /** A process inside the namespace of `role`; killed by `destroy()` if still running. */
  spawn(role, command, args = [], options = {}) {
    const child = spawn('ip', ['netns', 'exec', this.name(role), command, ...args], options)
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
    return child
  }

  /** Kills what is left of the processes, then deletes every namespace. Never throws; may be called again. */
  async destroy() {
    await Promise.all([...this.children].map(killAndWait))
    this.deleteNamespaces()
  }

  deleteNamespaces() {
    for (const name of this.namespaces.values()) deleteNamespace(name)
    this.namespaces.clear()
  }
}

/** A topology made by `steps`; if a step fails, what was made so far is deleted. */
function build(tag, steps) {
  const topology = new Topology(tag)
  try {
    steps(topology)
    return topology
  } catch (error) {
    topology.deleteNamespaces()
    throw error
  }
}

function killAndWait(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGKILL')
  })
}

/** One namespace whose multicast stays on loopback: many instances on one host. */
function loopbackHost(tag) {
  return build(tag, (topology) => {
    topology.addNamespace('host')
    topology.routeMulticast('host', 'lo')
  })
}

/**
 * A docker-style bridge network: a namespace 'br' holding bridge `br0`, and
 * one namespace per container with `eth0` plugged into it and multicast
 * routed out of eth0. `containers` maps role to CIDR ('10.213.1.2/24').
 */
function bridgeNetwork(tag, containers) {
  return build(tag, (topology) => {
    topology.addNamespace('br')
    topology.addBridge('br', 'br0')
    for (const [role, cidr] of Object.entries(containers)) {
      topology.addNamespace(role)
      topology.plug(role, 'eth0', { bridgeRole: 'br', bridge: 'br0', cidr })
      topology.routeMulticast(role, 'eth0')
    }
  })
}

/**
 * Devices of a fleet on one LAN: a namespace 'lan' holding the LAN switch
 * (bridge `br0`); each device has `eth0` on the LAN (its default route, so
 * multicast goes there too) and its own `supervisor0` bridge with the same
 * address on every device, as balenaOS sets it up. `devices` maps role to
 * the eth0 CIDR.
 */
function fleetLan(tag, devices, supervisorCidr = '10.114.104.1/24') {
  return build(tag, (topology) => {
    topology.addNamespace('lan')
    topology.addBridge('lan', 'br0')
    for (const [role, cidr] of Object.entries(devices)) {
      topology.addNamespace(role)
      topology.plug(role, 'eth0', { bridgeRole: 'lan', bridge: 'br0', cidr })
      topology.run(role, ['route', 'add', 'default', 'dev', 'eth0'])
      topology.addBridge(role, 'supervisor0', supervisorCidr)
    }
  })
}

module.exports = { Topology, build, topologiesAvailable, loopbackHost, bridgeNetwork, fleetLan, PREFIX }
