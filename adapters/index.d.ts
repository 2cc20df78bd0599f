// Types of the built-in adapters (`require('handover-native/adapters')`).
import type { RouterAdapter, RouteTable } from '..'

export interface HAProxyAdapterOptions {
  /** Runtime API: a unix socket path, or host:port. Env HANDOVER_HAPROXY_SOCKET; default /run/haproxy/admin.sock. */
  socket?: string
  /** The backend whose `server-template` slots are filled. Env HANDOVER_HAPROXY_BACKEND; default 'app'. */
  backend?: string
  timeoutMs?: number
}

export interface CaddyAdapterOptions {
  /** Admin API: http://host:port or unix//path. Env HANDOVER_CADDY_ADMIN; default http://127.0.0.1:2019. */
  admin?: string
  /** The `@id` of the reverse_proxy handler. Env HANDOVER_CADDY_ID; default 'handover'. */
  id?: string
  /**
   * After a change that removes an upstream, how long apply() gives requests Caddy routed there
   * before the change to arrive, before it resolves. Env HANDOVER_CADDY_SETTLE_MS; default 100.
   */
  settleMs?: number
  timeoutMs?: number
}

export interface NginxAdapterOptions {
  /** The file written (upstream block and confirmation server). Env HANDOVER_NGINX_UPSTREAM_FILE. */
  file?: string
  /** The upstream's name. Env HANDOVER_NGINX_UPSTREAM; default 'app'. */
  upstream?: string
  /** The reload command. Env HANDOVER_NGINX_RELOAD; default 'nginx -s reload'. */
  reload?: string | string[]
  /** Port or host:port of the confirmation server. Env HANDOVER_NGINX_CONFIRM_PORT; default 127.0.0.1:1539. */
  confirmPort?: string | number
  timeoutMs?: number
}

declare class BuiltInAdapter implements RouterAdapter {
  describe(): string
  /** Applies the table, then resolves once the proxy's own state says so; rejects with code 'ERR_HANDOVER_PROXY'. */
  apply(table: RouteTable): Promise<void>
  close(): Promise<void>
}

export declare class HAProxyAdapter extends BuiltInAdapter {
  constructor(options?: HAProxyAdapterOptions)
}
export declare class CaddyAdapter extends BuiltInAdapter {
  constructor(options?: CaddyAdapterOptions)
}
export declare class NginxAdapter extends BuiltInAdapter {
  constructor(options?: NginxAdapterOptions)
}

export declare function adapterFor(kind: 'haproxy', options?: HAProxyAdapterOptions): HAProxyAdapter
export declare function adapterFor(kind: 'caddy', options?: CaddyAdapterOptions): CaddyAdapter
export declare function adapterFor(kind: 'nginx', options?: NginxAdapterOptions): NginxAdapter

/** The servers that take new requests: the ready ones, or the draining ones as a last resort when none is ready. */
export declare function routable(table: RouteTable): RouteTable['servers']
