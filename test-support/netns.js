'use strict'
// Network topologies for scenario tests: network namespaces joined by
// Linux bridges and veth pairs, with addresses and multicast routes.
// Everything a topology makes lives inside namespaces it created, so no
// packet of a test can leave this machine and nothing in the root namespace
// changes.
//
// A namespace is kept alive by a holder: a `cat` started in it that reads a
// pipe from this process. Commands enter it by the holder's pid (`nsenter`).
// Nothing is named or mounted on the host: when `destroy()` kills the
// holders, or this process dies however it dies (the pipe closes, `cat`
// ends), the namespaces and their interfaces go away, and no run leaves
// anything behind for the next one.
//
// As root the namespaces are made directly. Any other user gets one user
// namespace per topology, in which it is root, and every network namespace
// of the topology is made inside it: so one process, root there, may
// administer all of them (a veth pair is made in one namespace and its peer
// moved to another, which needs CAP_NET_ADMIN over both). See isolated.js.

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const { usesUserNamespace, userNamespaceProblem, CONTAINER_HINT } = require('./isolated')

/** Namespace names (labels: nothing on the host carries them) start with this. */
const PREFIX = 'hoscn'
const MULTICAST = '224.0.0.0/4'
const HOLDER = 'cat'
const HOLDER_START_MS = 10_000
/** nsenter arguments that join the target's user namespace, as the root of it (our uid maps to 0 there). */
const ENTER_USER = ['--user', '--preserve-credentials']

/** Holders of this module instance still running, for the exit hook. */
const holders = new Set()
let topologies = 0

process.on('exit', () => holders.forEach((holder) => holder.kill()))

const pause = new Int32Array(new SharedArrayBuffer(4))
/** Blocks this thread for `ms` (topologies are built synchronously, in beforeEach). */
function sleepSync(ms) {
  Atomics.wait(pause, 0, 0, ms)
}

/**
 * A process that holds namespaces open: `argv` makes them, then execs
 * `cat`, which lives until its stdin closes or it is killed. The
 * constructor returns once `cat` runs, i.e. once the namespaces exist and
 * are set up (a uid map, for a user namespace), or throws.
 */
class Holder {
  constructor(argv) {
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] })
    // A holder that cannot start is reported below, by waitUntilHolding().
    this.child.on('error', () => {})
    this.pid = this.child.pid
    // Holders must not keep a test process alive; the exit hook ends them.
    this.child.unref()
    this.child.stdin.on('error', () => {})
    this.child.stdin.unref?.()
    holders.add(this)
    try {
      this.waitUntilHolding(argv)
    } catch (error) {
      this.kill()
      throw error
    }
  }

  /** Polls /proc until the process runs `cat`: every earlier step of `argv` succeeded. */
  waitUntilHolding(argv) {
    const deadline = Date.now() + HOLDER_START_MS
    while (this.pid !== undefined) {
      let stat
      let argv0
      try {
        stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8')
        argv0 = fs.readFileSync(`/proc/${this.pid}/cmdline`, 'utf8').split('\0')[0]
      } catch {
        break // gone (reaped)
      }
      // The state follows the parenthesised command name.
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') break
      if (argv0 === HOLDER) return
      if (Date.now() > deadline) throw new Error(`${argv.join(' ')}: not holding after ${HOLDER_START_MS} ms`)
      sleepSync(1)
    }
    throw new Error(`${argv.join(' ')} failed: ${whyItFails(argv)}`)
  }

  kill() {
    if (!holders.delete(this)) return
    try {
      this.child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

/** Runs a holder's command line to completion (its `cat` reads no input) for the error it prints. */
function whyItFails(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input: '', timeout: 10_000 })
  if (result.error) return result.error.message
  return (result.stderr || '').trim() || `exit status ${result.status}`
}

function check(command, args, result) {
  if (result.status !== 0) {
    const why = (result.stderr || String(result.error || `exit status ${result.status}`)).trim()
    throw new Error(`${command} ${args.join(' ')} failed: ${why}`)
  }
  return result.stdout
}

/**
 * A set of namespaces, called by role ('br', 'api-old', 'devA' …), with the
 * links between them.
 */
class Topology {
  constructor(tag) {
    this.prefix = `${PREFIX}-${process.pid}-${++topologies}${tag ? `-${tag}` : ''}`
    this.userNamespace = usesUserNamespace()
    /** role → Holder of its network namespace. */
    this.namespaces = new Map()
    this.children = new Set()
    this.cables = 0
    // The user namespace that owns this topology's network namespaces.
    this.owner = this.userNamespace ? new Holder(['unshare', '--user', '--map-root-user', HOLDER]) : null
  }

  /** Creates a network namespace with loopback up. Returns its name (a label). */
  addNamespace(role) {
    if (this.namespaces.has(role)) throw new Error(`namespace role ${role} exists already`)
    const make = ['unshare', '--net', HOLDER]
    const argv = this.owner ? ['nsenter', '--target', String(this.owner.pid), ...ENTER_USER, ...make] : make
    this.namespaces.set(role, new Holder(argv))
    this.run(role, ['link', 'set', 'lo', 'up'])
    return this.name(role)
  }

  holder(role) {
    const holder = this.namespaces.get(role)
    if (!holder) throw new Error(`no namespace for role ${role}`)
    return holder
  }

  /** The name of a role's namespace, for messages. */
  name(role) {
    this.holder(role)
    return `${this.prefix}-${role}`
  }

  /** The pid of a process in the network namespace of `role` (and in the topology's user namespace). */
  pid(role) {
    return this.holder(role).pid
  }

  /** `nsenter` arguments that enter the network namespace of `role` (as root there). */
  enter(role) {
    return ['--target', String(this.pid(role)), ...(this.userNamespace ? ENTER_USER : []), '--net']
  }

  /** Runs `ip args…` inside the namespace of `role`. */
  run(role, args) {
    const argv = [...this.enter(role), 'ip', ...args]
    return check('ip', args, spawnSync('nsenter', argv, { encoding: 'utf8' }))
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
    // `netns <pid>`: the namespace of that process.
    this.run(bridgeRole, ['link', 'add', port, 'type', 'veth', 'peer', 'name', ifname, 'netns', String(this.pid(role))])
    this.run(bridgeRole, ['link', 'set', port, 'master', bridge])
    this.run(bridgeRole, ['link', 'set', port, 'up'])
    if (cidr) this.run(role, ['address', 'add', cidr, 'dev', ifname])
    this.run(role, ['link', 'set', ifname, 'up'])
  }

  /** Routes the multicast range out of `dev`: where a container's default route would send it. */
  routeMulticast(role, dev) {
    this.run(role, ['route', 'add', MULTICAST, 'dev', dev])
  }

  /**
   * A process inside the namespace of `role` (root there); killed by
   * `destroy()` if still running. nsenter execs `command`, so the child is
   * the command itself.
   */
  spawn(role, command, args = [], options = {}) {
    const child = spawn('nsenter', [...this.enter(role), '--', command, ...args], options)
    this.children.add(child)
    child.on('exit', () => this.children.delete(child))
    return child
  }

  /** Kills what is left of the processes, then the namespaces. Never throws; may be called again. */
  async destroy() {
    await Promise.all([...this.children].map(killAndWait))
    this.deleteNamespaces()
  }

  /** Kills the holders: each namespace goes once no process is left in it. */
  deleteNamespaces() {
    for (const holder of this.namespaces.values()) holder.kill()
    this.namespaces.clear()
    this.owner?.kill()
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

let verdict
/**
 * Null when this process can build topologies; else why not (as a skip
 * reason, with how to allow it). Tried for real once per module instance:
 * two namespaces, a bridge, a veth pair, a multicast route.
 */
function topologyProblem() {
  if (verdict !== undefined) return verdict
  verdict = null
  try {
    const probe = build('probe', (topology) => {
      topology.addNamespace('a')
      topology.addBridge('a', 'br0')
      topology.addNamespace('b')
      topology.plug('b', 'eth0', { bridgeRole: 'a', bridge: 'br0', cidr: '10.213.255.2/24' })
      topology.routeMulticast('b', 'eth0')
    })
    probe.deleteNamespaces()
  } catch (error) {
    const needs = 'skipped: needs network namespaces joined by bridges and veth pairs'
    const missing = ['unshare', 'nsenter', 'ip'].filter((tool) => spawnSync(tool, ['--version']).error)
    if (missing.length > 0) {
      verdict = `${needs}; missing ${missing.join(', ')} (install util-linux and iproute2)`
    } else if (usesUserNamespace() && userNamespaceProblem()) {
      verdict = `${needs}. ${userNamespaceProblem()}`
    } else if (!usesUserNamespace()) {
      verdict = `${needs}, which failed even as root (${error.message.split('\n')[0]}); ${CONTAINER_HINT}`
    } else {
      verdict = `${needs}, which failed here: ${error.message.split('\n')[0]}`
    }
  }
  return verdict
}

/** True when this process may build topologies (see topologyProblem for why not). */
function topologiesAvailable() {
  return topologyProblem() === null
}

module.exports = {
  Topology,
  build,
  topologiesAvailable,
  topologyProblem,
  loopbackHost,
  bridgeNetwork,
  fleetLan,
  PREFIX,
}
