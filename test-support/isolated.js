'use strict'
// Private namespaces for tests, as root or not.
//
// As root, `unshare --net` (and --mount, --time) makes them directly. Any
// other user first gets a user namespace of its own in which it is root
// (`unshare --user --map-root-user`), and the other namespaces are made
// inside it: unprivileged, as long as the kernel lets users create user
// namespaces. Where it does not, suites that need namespaces skip, saying
// how to allow them.
//
// A private network namespace has loopback up and the multicast range routed
// to it (SETUP), so nothing a test sends can leave this machine. The JS
// original always sends through the default route, so this is the only way
// tests and benchmarks run it.

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const SETUP = 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec "$0" "$@"'
const REPOSITORY = path.join(__dirname, '..')
/** Why root may still be refused namespaces. */
const CONTAINER_HINT = 'in a container this needs CAP_SYS_ADMIN and CAP_NET_ADMIN'

/**
 * True when namespaces are made inside a user namespace: when not root, or
 * when HANDOVER_TEST_USERNS=1 asks for it (to try that path as root).
 */
function usesUserNamespace() {
  if (process.env.HANDOVER_TEST_USERNS === '1') return true
  return typeof process.getuid !== 'function' || process.getuid() !== 0
}

/** `unshare` arguments that make the namespaces of `flags`, inside a user namespace when not root. */
function unshareArgs(...flags) {
  return usesUserNamespace() ? ['--user', '--map-root-user', ...flags] : flags
}

/** `spawn` in a fresh, private network namespace. */
function spawnIsolated(command, args = [], options = {}) {
  return spawn('unshare', [...unshareArgs('--net'), 'sh', '-c', SETUP, command, ...args], options)
}

/**
 * True when plain `unshare -n` works (root). The benchmark runs `unshare`
 * itself with these semantics; tests use `isolationProblem()`.
 */
function namespacesAvailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return false
  return spawnSync('unshare', ['-n', 'sh', '-c', SETUP, 'true'], { stdio: 'ignore' }).status === 0
}

/** Runs `unshare args…` to completion: null when it worked, else what went wrong. */
function tryUnshare(args) {
  const result = spawnSync('unshare', args, { encoding: 'utf8', input: '', timeout: 10_000 })
  if (result.error) {
    return result.error.code === 'ENOENT'
      ? 'unshare is not installed (util-linux)'
      : `unshare ${args.join(' ')}: ${result.error.message}`
  }
  if (result.status === 0) return null
  const said = (result.stderr || '').trim().split('\n').pop()
  return said || `unshare ${args.join(' ')} exited with ${result.status ?? result.signal}`
}

function sysctl(name) {
  try {
    return fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim()
  } catch {
    return null
  }
}

/** What to change so that users may create user namespaces, from the settings that forbid it. */
function enablingHint() {
  const changes = []
  if (sysctl('user.max_user_namespaces') === '0') changes.push('user.max_user_namespaces=15000')
  if (sysctl('kernel.unprivileged_userns_clone') === '0') changes.push('kernel.unprivileged_userns_clone=1')
  if (sysctl('kernel.apparmor_restrict_unprivileged_userns') === '1') {
    changes.push('kernel.apparmor_restrict_unprivileged_userns=0')
  }
  if (changes.length > 0) {
    const commands = changes.map((change) => `sudo sysctl -w ${change}`).join(' && ')
    const lines = changes.map((change) => change.replace('=', ' = ')).join('; ')
    return `To allow it: \`${commands}\` (to keep it after a reboot, put \`${lines}\` in a file under /etc/sysctl.d/)`
  }
  return (
    'Check the sysctls user.max_user_namespaces (must be > 0), kernel.unprivileged_userns_clone (must be 1, ' +
    'where the kernel has it) and kernel.apparmor_restrict_unprivileged_userns (must be 0, Ubuntu 23.10 and ' +
    "later); in a container, its seccomp profile (Docker's default refuses new user namespaces)"
  )
}

let userNamespaceVerdict
/**
 * Null when this user can make a user namespace and be root in it (so as
 * to set up a network namespace there); else a sentence saying why not
 * and how to allow it.
 */
function userNamespaceProblem() {
  if (userNamespaceVerdict === undefined) {
    const error = tryUnshare(['--user', '--map-root-user', '--net', 'ip', 'link', 'set', 'lo', 'up'])
    userNamespaceVerdict =
      error &&
      `Not being root, the tests make their namespaces inside a user namespace, which this system refuses ` +
        `to create (${error}). ${enablingHint()}. Or run the tests as root.`
  }
  return userNamespaceVerdict
}

/** What each kind of isolation needs, tried the way the tests use it. */
const PROBES = {
  net: { what: 'a private network namespace', args: () => ['--net', 'sh', '-c', SETUP, 'true'] },
  mount: {
    what: 'a private mount namespace (for a private /tmp)',
    args: () => ['--mount', 'sh', '-c', 'mount --rbind "$0" /mnt && mount -t tmpfs tmpfs /tmp', REPOSITORY],
  },
  time: {
    what: 'a time namespace (Linux 5.6 or later, CONFIG_TIME_NS)',
    args: () => ['--time', '--boottime', '1', 'true'],
  },
}

const verdicts = new Map()
function probe(kind) {
  if (!verdicts.has(kind)) {
    const { what, args } = PROBES[kind]
    const error = tryUnshare(unshareArgs(...args()))
    verdicts.set(kind, error && { what, error })
  }
  return verdicts.get(kind)
}

/**
 * Null when the namespaces of `kinds` ('net', 'mount', 'time') can be made
 * here; else the reason to skip, with what to do about it.
 */
function isolationProblem(...kinds) {
  const failures = kinds.map(probe).filter(Boolean)
  if (failures.length === 0) return null
  const needs = `needs ${failures.map((f) => f.what).join(' and ')}`
  if (usesUserNamespace()) {
    const userProblem = userNamespaceProblem()
    if (userProblem) return `skipped: ${needs}. ${userProblem}`
  } else if (kinds.includes('net') || kinds.includes('mount')) {
    // Root, yet no namespace: a container without CAP_SYS_ADMIN, most likely.
    return `skipped: ${needs}, which failed even as root (${failures[0].error}); ${CONTAINER_HINT}`
  }
  return `skipped: ${needs}: ${failures.map((f) => f.error).join('; ')}`
}

/**
 * `describe` when `problem` is null; otherwise the suite is one skipped
 * test named by the problem. The problem is also written to stderr: Jest
 * shows neither the test names nor the console output of a file whose
 * tests are all skipped.
 */
function describeUnless(problem, title, body) {
  if (!problem) return describe(title, body)
  process.stderr.write(`[${title}] ${problem}\n`)
  return describe(title, () => test.skip(problem, () => {}))
}

module.exports = {
  SETUP,
  usesUserNamespace,
  unshareArgs,
  spawnIsolated,
  namespacesAvailable,
  isolationProblem,
  userNamespaceProblem,
  describeUnless,
  CONTAINER_HINT,
}
