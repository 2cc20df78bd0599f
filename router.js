'use strict'
// HandoverRouter: follows the status channel of one service and keeps a
// proxy's servers in step through an adapter (adapters/ has HAProxy, Caddy
// and nginx). The state machine and the sockets are native
// (src/channel/router.rs); this forwards the native side's requests to the
// adapter and its answers back, and turns changes into events.
//
// Loaded at the first `new HandoverRouter()` (index.js holds the class,
// empty until then), not by require('handover-native'): most services only
// hand over, and never route.

const STRING_OPTIONS = ['serviceName', 'statusBroadcastAddress', 'interfaceAddress', 'name', 'secret', 'logLevel']
const NUMBER_OPTIONS = ['servicePort', 'networkPort', 'routerPort', 'upPeriodMs', 'reconcileMs']

/**
 * Gives index.js's (empty) class HandoverRouter its methods, over the
 * helpers index.js owns (errors, environment, logging); returns what its
 * constructor runs.
 */
module.exports = function defineRouter(HandoverRouter, { native, call, environment, logSinkFor, argumentError, describe, errorText }) {
  /** Only the options the native side reads, each of the right type, so napi never has to refuse one. */
  function routerOptions(options) {
    if (options === undefined || options === null) return {}
    if (typeof options !== 'object') throw argumentError(`options must be an object; got ${describe(options)}`)
    const picked = {}
    for (const name of STRING_OPTIONS) {
      const value = options[name]
      if (value === undefined) continue
      if (typeof value !== 'string') throw argumentError(`options.${name} must be a string; got ${describe(value)}`)
      picked[name] = value
    }
    for (const name of NUMBER_OPTIONS) {
      const value = options[name]
      if (value === undefined) continue
      if (typeof value !== 'number') throw argumentError(`options.${name} must be a number; got ${describe(value)}`)
      picked[name] = value
    }
    if (options.subnets !== undefined) {
      const { subnets } = options
      if (!Array.isArray(subnets) || !subnets.every((s) => typeof s === 'string')) {
        throw argumentError(`options.subnets must be an array of strings like '10.0.0.0/24'; got ${describe(subnets)}`)
      }
      picked.subnets = subnets.slice()
    }
    return picked
  }

  /**
   * The constructor's work, on `router` (a HandoverRouter whose
   * EventEmitter is set up).
   * @param adapter `{ apply(table): Promise<void>, close?(): Promise<void>, describe?(): string }`
   * @param options see index.d.ts (HandoverRouterOptions)
   */
  function construct(router, adapter, options) {
    if (!adapter || typeof adapter.apply !== 'function') {
      throw argumentError(`adapter must be an object with an apply(table) method; got ${describe(adapter)}`)
    }
    const picked = routerOptions(options)
    // node:os only here: require() of the package stays free of it.
    const os = require('node:os')
    const contextId = `router ${picked.name || os.hostname()}`
    const logSink = logSinkFor(options && options.logger, contextId)
    Object.defineProperty(router, '_native', {
      value: call(() => new native.NativeRouter(picked, environment(), os.hostname(), contextId, logSink)),
    })
    Object.defineProperty(router, '_adapter', { value: adapter })
    router._closed = false
    router.subnets = []
  }

  /** The methods, as a class body; copied onto HandoverRouter.prototype below. */
  class Methods {
    /** Starts following the status channel. Resolves once listening; apply failures are retried and reported as events. */
    start() {
      this.subnets = call(() => this._native.start((event) => this._event(event)))
      const where = typeof this._adapter.describe === 'function' ? ` for ${this._adapter.describe()}` : ''
      this._native.log('info', `routing ${this.subnets.join(', ')}${where}`)
      return Promise.resolve(this)
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

    async close() {
      if (this._closed) return
      this._closed = true
      call(() => this._native.close())
      if (typeof this._adapter.close === 'function') await this._adapter.close()
    }

    _event(event) {
      if (this._closed) return
      if (event.kind === 'apply') {
        this._apply(event.table)
        return
      }
      // Told once: to the 'change' listeners, or else to the log.
      if (this.listenerCount('change') > 0) this.emit('change', event.line, event)
      else this._native.log(event.kind === 'unreachable' ? 'warning' : 'info', event.line)
    }

    async _apply(table) {
      try {
        await this._adapter.apply(table)
      } catch (error) {
        if (this._closed) return
        this._native.failed(table.generation, error && error.message ? error.message : errorText(error))
        if (this.listenerCount('error') > 0) this.emit('error', error)
        return
      }
      if (this._closed) return
      this._native.applied(table.generation)
      this.emit('applied', table)
    }
  }

  const methods = Object.getOwnPropertyDescriptors(Methods.prototype)
  delete methods.constructor
  Object.defineProperties(HandoverRouter.prototype, methods)
  return construct
}
