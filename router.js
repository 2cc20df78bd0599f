'use strict'
// HandoverRouter: follows the status channel of one service and keeps a
// proxy's servers in step through an adapter (adapters/ has HAProxy, Caddy
// and nginx). The state machine and the sockets are native
// (src/channel/router.rs); this forwards the native side's requests to the
// adapter and its answers back, and turns changes into events.
//
// Loaded at the first `new HandoverRouter()` (index.js holds the class and
// its methods, which call these), not by require('handover-native'): most
// services only hand over, and never route.

const STRING_OPTIONS = ['serviceName', 'statusBroadcastAddress', 'interfaceAddress', 'name', 'secret', 'logLevel']
const NUMBER_OPTIONS = ['servicePort', 'networkPort', 'routerPort', 'upPeriodMs', 'reconcileMs']

/**
 * The router's work over the helpers index.js owns (errors, environment,
 * logging): { construct, start, close }, each taking the HandoverRouter.
 */
module.exports = function routerPart({ native, call, environment, logSinkFor, argumentError, describe, errorText }) {
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

  function start(router) {
    router.subnets = call(() => router._native.start((event) => onEvent(router, event)))
    const where = typeof router._adapter.describe === 'function' ? ` for ${router._adapter.describe()}` : ''
    router._native.log('info', `routing ${router.subnets.join(', ')}${where}`)
    return Promise.resolve(router)
  }

  async function close(router) {
    if (router._closed) return
    router._closed = true
    call(() => router._native.close())
    if (typeof router._adapter.close === 'function') await router._adapter.close()
  }

  function onEvent(router, event) {
    if (router._closed) return
    if (event.kind === 'apply') {
      apply(router, event.table)
      return
    }
    // Told once: to the 'change' listeners, or else to the log.
    if (router.listenerCount('change') > 0) router.emit('change', event.line, event)
    else router._native.log(event.kind === 'unreachable' ? 'warning' : 'info', event.line)
  }

  async function apply(router, table) {
    try {
      await router._adapter.apply(table)
    } catch (error) {
      if (router._closed) return
      router._native.failed(table.generation, error && error.message ? error.message : errorText(error))
      if (router.listenerCount('error') > 0) router.emit('error', error)
      return
    }
    if (router._closed) return
    router._native.applied(table.generation)
    router.emit('applied', table)
  }

  return { construct, start, close }
}
