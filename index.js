'use strict'
// The public API: thin classes over the native binding. They keep what JS
// must own (the caller's Date and context objects, events, the handover
// Promise), check argument types, and turn native errors into the right JS
// error classes. Everything else happens in Rust (src/).

const { EventEmitter } = require('node:events')
const native = require('./binding.js')

/** The names of the variables the configuration reads: asked of the native side at the first use, not at load. */
let environmentVariables = null

/** The part of an environment the configuration reads (process.env at construction, as the original). */
function pick(env) {
  if (environmentVariables === null) environmentVariables = native.environmentVariables()
  const picked = {}
  for (const name of environmentVariables) {
    const value = env[name]
    if (typeof value === 'string') picked[name] = value
  }
  return picked
}

const environment = () => pick(process.env)

/**
 * Error codes, as on the errors this package throws (`error.code`):
 * ERR_INVALID_ARG_TYPE and ERR_INVALID_ARG_VALUE (TypeError), ERR_OUT_OF_RANGE (RangeError),
 * ERR_HANDOVER_CLOSED, ERR_HANDOVER_SOCKET and ERR_HANDOVER_INTERNAL (Error).
 * The native side throws them with class and code already.
 */
const CODES = {
  INVALID_ARG_TYPE: 'ERR_INVALID_ARG_TYPE',
  OUT_OF_RANGE: 'ERR_OUT_OF_RANGE',
  INVALID_ARG_VALUE: 'ERR_INVALID_ARG_VALUE',
  CLOSED: 'ERR_HANDOVER_CLOSED',
  SOCKET: 'ERR_HANDOVER_SOCKET',
  INTERNAL: 'ERR_HANDOVER_INTERNAL',
}

/** A TypeError with Node's code for a bad argument. */
function argumentError(message) {
  const error = new TypeError(message)
  error.code = CODES.INVALID_ARG_TYPE
  return error
}

const CLASSES = { TypeError, RangeError, Error }
const OUR_CODES = new Set(Object.values(CODES))

/**
 * Runs a native call. Its errors are rebuilt here, by code: the addon creates
 * them in Node's main realm, where `instanceof RangeError` is false for code
 * running in another one (a Jest test file).
 */
function call(fn) {
  try {
    return fn()
  } catch (error) {
    if (!error || !OUR_CODES.has(error.code)) throw error
    const rebuilt = new (CLASSES[error.name] || Error)(error.message)
    rebuilt.code = error.code
    throw rebuilt
  }
}

/**
 * The time value of `startedAt` in ms. A Date, as documented; and, as the
 * original took them (it read `BigInt(startedAt.valueOf())`, or the string
 * itself), a number, a bigint, a string of decimal digits, or any object
 * whose `valueOf()` gives one of those. Whether the time is valid (an
 * Invalid Date, a fraction, out of range) is checked natively, once, with
 * every other time (src/time_value.rs).
 */
function timeValue(value, name) {
  if (Object.prototype.toString.call(value) === '[object Date]') return value.valueOf()
  let primitive = value
  if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
    try {
      primitive = value.valueOf()
    } catch {
      primitive = undefined
    }
  }
  if (typeof primitive === 'number') return primitive
  if (typeof primitive === 'bigint') return Number(primitive)
  if (typeof primitive === 'string' && /^-?\d+$/.test(primitive.trim())) return Number(primitive.trim())
  throw argumentError(
    `${name} must be a Date (or a number of ms since the epoch, as handover-lib took); got ${describe(value)}`,
  )
}

/**
 * The context id log lines carry. The original kept whatever context it was
 * given (a falsy one meant its default) and interpolated `context.id` into
 * its lines, so any id is taken, as text; a context that is no object is
 * its own id (the original's logger threw on one at its first line).
 */
function contextIdOf(context) {
  if (typeof context === 'object' || typeof context === 'function') {
    return context.id === undefined ? defaultContext().id : String(context.id)
  }
  return String(context)
}

/**
 * Splits the options into what the native side reads (and checks) and the
 * logger, which only JS can call. Anything but an object goes native as it
 * is, to be refused there.
 */
function checkOptions(options, contextId) {
  if (options === null || typeof options !== 'object') return { native: options, logSink: undefined }
  const { logger, ...native } = options
  return { native, logSink: logSinkFor(logger, contextId) }
}

const LOGGER_METHODS = {
  emerg: 'error',
  alert: 'error',
  crit: 'error',
  error: 'error',
  warning: 'warn',
  notice: 'info',
  info: 'info',
  debug: 'debug',
}

/**
 * options.logger: a function `(level, message)` or an object with
 * error/warn/info/debug methods (console, pino, winston...). Lines then go
 * there instead of stdout.
 */
function logSinkFor(logger, contextId) {
  if (logger === undefined || logger === null) return undefined
  if (typeof logger === 'function') return guarded(({ level, message }) => logger(level, `[${contextId}] ${message}`))
  if (typeof logger === 'object') {
    return guarded(({ level, message }) => {
      const method = LOGGER_METHODS[level] || 'info'
      const write = typeof logger[method] === 'function' ? logger[method] : logger.log
      if (typeof write === 'function') write.call(logger, `[${contextId}] ${message}`)
    })
  }
  throw argumentError(`options.logger must be a function or an object with error/warn/info/debug methods; got ${describe(logger)}`)
}

/** How often a failing logger is reported on stderr. */
const LOGGER_FAILURE_REPORT_MS = 1000
const loggerFailures = { lastReport: 0, suppressed: 0 }

/**
 * A user's logger can throw (say, closed in the shutdown callback). It runs
 * from a native callback, where a throw would be an uncaught exception that
 * ends the process: report it on stderr, once a second at most, instead.
 */
function guarded(sink) {
  return (record) => {
    try {
      sink(record)
    } catch (error) {
      const now = Date.now()
      if (now - loggerFailures.lastReport < LOGGER_FAILURE_REPORT_MS) {
        loggerFailures.suppressed++
        return
      }
      const more = loggerFailures.suppressed ? ` (${loggerFailures.suppressed} more failures since the last report)` : ''
      loggerFailures.lastReport = now
      loggerFailures.suppressed = 0
      process.stderr.write(`handover: options.logger threw; the line was: ${record.message}\n${errorText(error)}${more}\n`)
    }
  }
}

function checkFunction(value, name) {
  if (typeof value !== 'function') throw argumentError(`${name} must be a function; got ${describe(value)}`)
}

function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  return typeof value === 'object' ? Object.prototype.toString.call(value) : `${typeof value} ${String(value)}`
}

/** The original's default context id. */
function defaultContext() {
  return { id: `PID${process.pid}-[${Math.round(Math.random() * 1000)}]-` }
}

/** Message and stack of anything a callback threw or rejected with. */
function errorText(error) {
  if (error instanceof Error || (error && typeof error.stack === 'string')) return error.stack || String(error)
  try {
    return `non-Error value thrown: ${typeof error === 'string' ? error : JSON.stringify(error)}`
  } catch {
    return `non-Error value thrown: ${String(error)}`
  }
}

/** What both public classes share: counters, close(), and how a listen failure is reported. */
class Channel extends EventEmitter {
  /** Packet counters. */
  stats() {
    return this._native.stats()
  }

  close() {
    Object.defineProperty(this, '_closed', { value: true, configurable: true })
    this._native.close()
  }

  /**
   * Runs a native startListening. Calling it on a closed object throws; a
   * socket problem (port in use…) is logged natively and emitted as 'error'
   * when someone listens, but never thrown: the original did not throw either.
   */
  _startListening(start) {
    try {
      call(start)
    } catch (error) {
      if (error.code === CODES.CLOSED) throw error
      if (this.listenerCount('error') > 0) this.emit('error', error)
    }
  }
}

class HandoverPeer extends Channel {
  constructor(startedAt, context, options) {
    super()
    const startedAtMs = timeValue(startedAt, 'startedAt')
    /** The very value given, so `instanceof Date` holds in the caller's realm. */
    this.startedAt = startedAt
    this.context = context || defaultContext()
    const contextId = contextIdOf(this.context)
    const { native: nativeOptions, logSink } = checkOptions(options, contextId)
    let settle
    /** Resolves with the handover report once this instance handed over. */
    this.handover = new Promise((resolve) => {
      settle = resolve
    })
    Object.defineProperty(this, '_onHandover', {
      value: (report) => {
        settle(report)
        try {
          this.emit('handover', report)
        } catch (error) {
          // A listener's throw reaches the process as any other would:
          // 'uncaughtException', or the end of it. Native code, which
          // called us, can do nothing with it.
          process.nextTick(() => {
            throw error
          })
        }
      },
    })
    const peer = call(
      () => new native.NativePeer(startedAtMs, contextId, nativeOptions, environment(), logSink),
    )
    Object.defineProperty(this, '_native', { value: peer })
    this.shutdownPort = peer.port
    this.shutdownBroadcastAddress = peer.address
  }

  /** True once a younger instance was heard. */
  get shuttingDown() {
    return this._native.shuttingDown
  }

  /**
   * The original's field was writable: `true` made the peer ignore younger
   * instances and not start broadcasting, `false` undid that. Kept so; a
   * handover already begun is not undone.
   */
  set shuttingDown(value) {
    this._native.hold(Boolean(value))
  }

  /** Random id carried in announcements; breaks ties between same-age instances. */
  get instanceId() {
    return this._native.instanceId
  }

  /**
   * Sends the first announcement now, then the others on the schedule, from
   * a native timer on this thread's loop: like the original's interval, a
   * broadcasting peer keeps the process alive.
   */
  startBroadcasting() {
    // Ready: a shared listener takes the port's new connections first, so
    // that the older instance, which hears this, gets none after.
    for (const shared of this._shared || []) shared.steer()
    call(() => this._native.startBroadcasting())
  }

  startListening(shutdownCallback) {
    checkFunction(shutdownCallback, 'shutdownCallback')
    // Always a Promise to the native side: a plain function, one that throws
    // and one that rejects all settle it, with the error's text.
    // 'shuttingDown' listeners see the event first; it is only fetched for them.
    const run = async () => {
      if (this.listenerCount('shuttingDown') > 0) {
        try {
          this.emit('shuttingDown', this._native.shuttingDownEvent)
        } catch (error) {
          this._native.log('error', `a 'shuttingDown' listener threw: ${errorText(error)}`)
        }
      }
      try {
        // What is queued on a shared listener is accepted before the
        // callback closes the server (see listenShared).
        for (const shared of this._shared || []) {
          try {
            await shared.drain()
          } catch (error) {
            // The callback runs all the same: it closes the server.
            this._native.log('error', `draining the shared listener failed: ${errorText(error)}`)
          }
        }
        await shutdownCallback()
        return null
      } catch (error) {
        return errorText(error)
      }
    }
    this._startListening(() => this._native.startListening(run, this._onHandover))
  }
}

class HandoverStatus extends Channel {
  constructor(startedAt, serviceName, addresses, context, options) {
    super()
    const startedAtMs = timeValue(startedAt, 'startedAt')
    const chosenContext = context || defaultContext()
    const contextId = contextIdOf(chosenContext)
    const { native: nativeOptions, logSink } = checkOptions(options, contextId)
    // The service name, addresses and options are checked natively.
    const status = call(
      () =>
        new native.NativeStatus(startedAtMs, serviceName, addresses, contextId, nativeOptions, environment(), logSink),
    )
    this.startedAt = startedAt
    this.serviceName = serviceName
    this.addresses = addresses.slice()
    this.context = chosenContext
    Object.defineProperty(this, '_native', { value: status })
    this.networkPort = status.port
    this.statusBroadcastAddress = status.address
  }

  startBroadcastingServiceUp() {
    call(() => this._native.startUp())
  }

  startBroadcastingServiceDown() {
    call(() => this._native.startDown())
  }

  startListening(callback) {
    checkFunction(callback, 'callback')
    const deliver = (message) => {
      // Messages already queued when close() returned are not delivered.
      if (this._closed) return
      try {
        const result = callback(message)
        if (result && typeof result.then === 'function') {
          result.then(undefined, (error) => this._callbackFailed(error))
        }
      } catch (error) {
        this._callbackFailed(error)
      }
    }
    this._startListening(() => this._native.startListening(deliver))
  }

  _callbackFailed(error) {
    this._native.log('error', `status callback failed: ${errorText(error)}`)
  }

  /**
   * Starts DOWN (as startBroadcastingServiceDown), then resolves once every
   * router of this service heard in the last 3 s confirmed that its proxy
   * sends no new requests here, or after timeoutMs (default 10000). With no
   * router heard, at once. Resolves with { acknowledged, timedOut, waitedMs }.
   */
  drain(options) {
    const timeoutMs = drainTimeout(options)
    return new Promise((resolve) => {
      call(() => this._native.drain(timeoutMs, resolve))
    })
  }
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

function drainTimeout(options) {
  if (options === undefined || options === null) return DEFAULT_DRAIN_TIMEOUT_MS
  if (typeof options !== 'object') throw argumentError(`options must be an object; got ${describe(options)}`)
  const { timeoutMs } = options
  if (timeoutMs === undefined) return DEFAULT_DRAIN_TIMEOUT_MS
  if (typeof timeoutMs !== 'number') throw argumentError(`options.timeoutMs must be a number; got ${describe(timeoutMs)}`)
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0 || timeoutMs > 2 ** 31 - 1) {
    const error = new RangeError(`options.timeoutMs must be between 0 and ${2 ** 31 - 1}; got ${timeoutMs}`)
    error.code = CODES.OUT_OF_RANGE
    throw error
  }
  return timeoutMs
}

/** How often a bind refused by a listener that does not share the port is retried. */
const SHARED_RETRY_MS = 25

/**
 * A TCP port shared by both instances of a host-network service during the
 * handover (Linux): see listenShared. The socket work is native
 * (src/channel/shared_listener.rs); this only forwards.
 */
class SharedListener {
  constructor(server, options) {
    Object.defineProperty(this, '_server', { value: server })
    Object.defineProperty(this, '_options', { value: options })
    Object.defineProperty(this, '_native', { value: null, writable: true })
    this._wantSteer = false
    this._closed = false
    this.retriedMs = 0
    this.listening = new Promise((resolve, reject) => {
      this._settle = { resolve, reject }
    })
    // A rejection nobody awaits is the server's 'error' too.
    this.listening.catch(() => {})
  }

  /** One attempt; true when listening (or given up). */
  _attempt() {
    const { host, port, backlog, service, steering, contextId, logLevel, logSink } = this._options
    if (this._closed) return true
    const opened = call(() => native.openSharedListener(host, port, backlog, service, steering, contextId, logLevel, logSink))
    if (!opened) return false
    this._native = opened
    if (this.retriedMs > 0) {
      opened.log('notice', `port ${port} is free after ${this.retriedMs} ms of retries: listening, shared`)
    }
    this._server.once('close', () => this._release())
    this._server.listen({ fd: opened.fd }, () => {
      if (this._wantSteer) this.steer()
      this._settle.resolve(this)
    })
    return true
  }

  _start() {
    if (this._attempt()) return
    const { port, logSink, contextId, peer } = this._options
    const line = `port ${port} is held by a listener that does not share it (an instance without listenShared, or another user): retrying every ${SHARED_RETRY_MS} ms until it closes`
    // The peer's logger, when there is one: the line reads like its others.
    if (peer) peer._native.log('warning', line)
    else if (logSink) logSink({ level: 'warning', message: line })
    else process.stdout.write(`[${contextId}] ${line}\n`)
    const started = Date.now()
    const retry = () => {
      try {
        this.retriedMs = Date.now() - started
        if (!this._attempt()) this._timer = setTimeout(retry, SHARED_RETRY_MS)
      } catch (error) {
        this._settle.reject(error)
        this._server.emit('error', error)
      }
    }
    this._timer = setTimeout(retry, SHARED_RETRY_MS)
  }

  /** The younger instance is ready: every new connection comes here (done by HandoverPeer.startBroadcasting). */
  steer() {
    if (this._native && this._server.listening) return this._native.steerToSelf()
    this._wantSteer = true
    return 'pending'
  }

  /**
   * Resolves once nothing is left queued on this listener (new connections
   * already go to the younger instance); the server keeps accepting
   * meanwhile. Done by HandoverPeer before its shutdown callback runs.
   * Then our copy of the socket is released: the server's close() closes it.
   */
  async drain() {
    if (!this._native || this._closed) return
    const deadline = Date.now() + (this._options.drainTimeoutMs ?? 5000)
    while (!call(() => this._native.drainStep())) {
      if (Date.now() > deadline) {
        this._native.log('warning', 'drain timed out; closing anyway')
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    this._release()
  }

  /** Drains, then closes the server; resolves when it closed. */
  async close() {
    await this.drain()
    await new Promise((resolve) => {
      if (!this._server.listening) return resolve()
      this._server.close(() => resolve())
    })
    this._release()
  }

  _release() {
    this._closed = true
    clearTimeout(this._timer)
    if (this._native) this._native.close()
  }

  stats() {
    return this._native ? this._native.stats() : null
  }
}

/**
 * Listens `server` (a net.Server or http.Server) on `options.port`, shared
 * with the other instance of this service (SO_REUSEPORT, Linux): for
 * services in `network_mode: host`. With `options.peer` (this instance's
 * HandoverPeer), new connections come here once `peer.startBroadcasting()`
 * runs, and the older instance drains its listener before its shutdown
 * callback. A port held by a listener that does not share it (the first
 * roll-out) is retried until it closes. Returns the handle at once;
 * `handle.listening` resolves when the server listens.
 */
function listenShared(server, options = {}) {
  if (!server || typeof server.listen !== 'function') throw argumentError(`server must be a net.Server or http.Server; got ${describe(server)}`)
  if (options === null || typeof options !== 'object') throw argumentError(`options must be an object; got ${describe(options)}`)
  const { port, host = '0.0.0.0', backlog = 511, peer, logger, logLevel, drainTimeoutMs, steering = true } = options
  if (!Number.isInteger(port)) throw argumentError(`options.port must be an integer; got ${describe(port)}`)
  if (peer !== undefined && !(peer instanceof HandoverPeer)) throw argumentError(`options.peer must be a HandoverPeer; got ${describe(peer)}`)
  const contextId = peer ? contextIdOf(peer.context) : defaultContext().id
  const shared = new SharedListener(server, {
    host, port, backlog, contextId, logLevel, drainTimeoutMs, peer, logSink: logSinkFor(logger, contextId),
    steering: steering !== false,
    // Only instances of one service share a port (the kernel keeps other users out).
    service: process.env.BALENA_SERVICE_NAME || '',
  })
  if (peer) {
    if (!peer._shared) Object.defineProperty(peer, '_shared', { value: [] })
    peer._shared.push(shared)
  }
  shared._start()
  return shared
}

/** Decodes one packet of the handover or the status channel (for tools). */
function describePacket(buffer) {
  if (!(buffer instanceof Uint8Array)) throw argumentError(`packet must be a Buffer or Uint8Array; got ${describe(buffer)}`)
  return native.describePacket(Buffer.isBuffer(buffer) ? buffer : Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength))
}

/** Encodes a 120-byte status message (v2); throws TypeError/RangeError on values that do not fit. */
function encodeStatusMessage(timestamp, serviceName, addresses, status) {
  const timestampMs = timeValue(timestamp, 'timestamp')
  return call(() => native.encodeStatusMessage(timestampMs, serviceName, addresses, status))
}

// One shorthand object literal, so that Node's detector of CommonJS exports
// (cjs-module-lexer) sees every name: `import { describePacket } from
// 'handover-native'` then works from ES modules. Add new exports here, as
// identifiers, not as `name: expression`.
/**
 * What one channel of a HandoverPeer ('handover') or HandoverStatus
 * ('status') would use with these settings (text, as a command line gives
 * them) and environment, and where each value came from (for tools).
 */
function resolveChannelSettings(channel, given, env = process.env) {
  return call(() => native.resolveChannelSettings(channel, given, pick(env)))
}

/** Every setting the configuration reads, with its variable and default (for help texts). */
function settingDescriptions() {
  return native.settingDescriptions()
}

/** router.js's part of HandoverRouter, loaded at the first `new HandoverRouter()`. */
let routerWork = null
function routerPart() {
  if (routerWork === null) {
    routerWork = require('./router.js')({ native, call, environment, logSinkFor, argumentError, describe, errorText })
  }
  return routerWork
}

/**
 * Follows the status channel of one service and keeps a proxy in step
 * through an adapter. The work is in router.js, loaded at the first
 * `new HandoverRouter()`: require('handover-native') of a service that only
 * hands over reads and compiles none of it.
 */
class HandoverRouter extends EventEmitter {
  /**
   * @param adapter `{ apply(table): Promise<void>, close?(): Promise<void>, describe?(): string }`
   * @param options see index.d.ts (HandoverRouterOptions)
   */
  constructor(adapter, options) {
    super()
    routerPart().construct(this, adapter, options)
  }

  /** Starts following the status channel. Resolves once listening; apply failures are retried and reported as events. */
  start() {
    return routerPart().start(this)
  }

  /** 16 hex digits: this router in HELLO and DRAINED, and in drain reports. */
  get id() {
    return this._native.id
  }

  /** The route table as last handed to the adapter, or null before the first. */
  table() {
    return this._native.table()
  }

  stats() {
    return this._native.stats()
  }

  close() {
    return routerPart().close(this)
  }
}

module.exports = {
  HandoverPeer,
  HandoverStatus,
  HandoverRouter,
  describePacket,
  listenShared,
  SharedListener,
  encodeStatusMessage,
  resolveChannelSettings,
  settingDescriptions,
}
