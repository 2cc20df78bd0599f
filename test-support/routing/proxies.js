'use strict'
// How each proxy of the routing load proofs is configured and started, in
// the proxy namespace (test-support/routing/topology.js). Every file lives
// in the run's own temporary folder; nothing of the system's configuration
// (/etc/haproxy, /etc/nginx, Caddy's autosave) is read or written.
//
// Two shapes:
//   baseline  what users run today: every instance address listed statically
//             (Docker's DNS is not here), HAProxy with the Jellyfish app's
//             health checks (`check inter 3s rise 2 fall 3`), nginx with its
//             passive failover (`max_fails`/`fail_timeout`,
//             `proxy_next_upstream error timeout`)
//   routed    slots the adapter points at the instances the router follows
//             (adapters/<kind>.js drives them; test-support/routing/router.js)

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const LISTEN_PORT = 8000
const SLOTS = 10
const CADDY_ADMIN = '127.0.0.1:2019'

/** Null when `kind`'s binary runs here, else why not (a skip message). */
function missing(kind) {
  const binary = { haproxy: 'haproxy', nginx: 'nginx', caddy: 'caddy' }[kind]
  const result = spawnSync(binary, [kind === 'caddy' ? 'version' : '-v'], { stdio: 'ignore' })
  return result.error ? `skipped: ${binary} is not installed (.ci/run installs HAProxy 2.6, Caddy 2.6 and nginx 1.22 from Debian)` : null
}

function haproxyConfig({ dir, listen, servers, routed }) {
  const backend = routed
    ? // Slots in maintenance until the adapter points them at instances.
      `  server-template slot 1-${SLOTS} 127.0.0.1:9 disabled\n`
    : servers.map((s, i) => `  server s${i + 1} ${s.address}:${s.port} check inter 3s rise 2 fall 3\n`).join('')
  return `global
  stats socket ${path.join(dir, 'admin.sock')} mode 600 level admin
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s

frontend web
  bind ${listen}
  default_backend app

backend app
  balance roundrobin
${backend}`
}

function nginxConfig({ dir, listen, servers, routed }) {
  // Routed: the adapter writes the whole `upstream app { … }` block (and its confirmation server)
  // into handover.conf; until its first apply, an upstream nginx accepts and that routes nowhere.
  const upstream = routed
    ? `  include ${path.join(dir, 'handover.conf')};\n`
    : `  upstream app {\n${servers.map((s) => `    server ${s.address}:${s.port} max_fails=1 fail_timeout=10s;\n`).join('')}  }\n`
  if (routed) fs.writeFileSync(path.join(dir, 'handover.conf'), 'upstream app { server 127.0.0.1:9 down; }\n')
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${path.join(dir, `${t}_temp`)};\n`)
    .join('')
  return `worker_processes 1;
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
${temp}${upstream}  server {
    listen ${listen};
    location / {
      proxy_pass http://app;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
    }
  }
}
`
}

function caddyConfig({ listen }) {
  // Routed only: the adapter sets the upstreams of this reverse_proxy through the admin API.
  return JSON.stringify({
    admin: { listen: CADDY_ADMIN, config: { persist: false } },
    apps: {
      http: {
        servers: {
          web: {
            listen: [listen],
            automatic_https: { disable: true },
            routes: [{ handle: [{ handler: 'reverse_proxy', '@id': 'handover', upstreams: [{ dial: '127.0.0.1:9' }] }] }],
          },
        },
      },
    },
  })
}

/**
 * Writes the configuration of `kind` into `dir` and returns how to run it:
 * { command, args, adapterOptions } (adapterOptions for the routed shape).
 * `servers`: [{ address, port }] for the baseline's static list.
 */
function prepare(kind, { dir, address, servers = [], routed }) {
  const listen = `${address}:${LISTEN_PORT}`
  if (kind === 'haproxy') {
    const file = path.join(dir, 'haproxy.cfg')
    fs.writeFileSync(file, haproxyConfig({ dir, listen, servers, routed }))
    return { command: 'haproxy', args: ['-db', '-f', file], adapterOptions: { socket: path.join(dir, 'admin.sock'), backend: 'app' } }
  }
  if (kind === 'nginx') {
    const file = path.join(dir, 'nginx.conf')
    fs.writeFileSync(file, nginxConfig({ dir, listen, servers, routed }))
    const base = ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', file]
    return {
      command: 'nginx',
      args: base,
      adapterOptions: {
        file: path.join(dir, 'handover.conf'),
        upstream: 'app',
        reload: ['nginx', ...base, '-s', 'reload'],
      },
    }
  }
  if (kind === 'caddy') {
    if (!routed) throw new Error('Caddy has no baseline here: the issue asks for HAProxy and nginx baselines')
    const file = path.join(dir, 'caddy.json')
    fs.writeFileSync(file, caddyConfig({ listen }))
    return {
      command: 'caddy',
      args: ['run', '--config', file],
      env: { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
      adapterOptions: { admin: `http://${CADDY_ADMIN}`, id: 'handover' },
    }
  }
  throw new Error(`unknown proxy ${kind}`)
}

module.exports = { prepare, missing, LISTEN_PORT, SLOTS }
