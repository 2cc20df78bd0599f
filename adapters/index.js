'use strict'
// The built-in adapters, one per proxy, and adapterFor() to pick one by name
// (as `handover route haproxy|caddy|nginx` does). Each implements the adapter
// interface of docs/ROUTING.md: describe(), async apply(table), async close().

const { HAProxyAdapter } = require('./haproxy')
const { CaddyAdapter } = require('./caddy')
const { NginxAdapter } = require('./nginx')
const { proxyError, routable } = require('./common')

const KINDS = { haproxy: HAProxyAdapter, caddy: CaddyAdapter, nginx: NginxAdapter }

/** A new adapter for `kind` ('haproxy', 'caddy' or 'nginx'), with its options (else its environment variables). */
function adapterFor(kind, options = {}) {
  const Adapter = KINDS[String(kind).toLowerCase()]
  if (!Adapter) throw proxyError(`no adapter for proxy ${JSON.stringify(kind)}: use one of ${Object.keys(KINDS).join(', ')}`)
  return new Adapter(options)
}

module.exports = { HAProxyAdapter, CaddyAdapter, NginxAdapter, adapterFor, routable }
