'use strict'
// A minimal npm registry on 127.0.0.1 for the release rehearsal: it takes
// `npm publish`, serves packuments and tarballs, and nothing else. It never
// proxies: a package that was not published to it is a 404, so an install
// that would have reached the public registry fails loudly instead.
//
//   const registry = await startRegistry({ token: 'fake' })
//   registry.url        // 'http://127.0.0.1:<port>/'
//   registry.published  // [{ name, version }] in publish order
//   await registry.close()

const crypto = require('node:crypto')
const http = require('node:http')

/** `@scope%2fname` and `@scope/name` both name a scoped package. */
function packageNameFromPath(pathname) {
  return decodeURIComponent(pathname.slice(1))
}

function send(res, status, body) {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
  const type = Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json'
  res.writeHead(status, { 'content-type': type, 'content-length': data.length })
  res.end(data)
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** The SRI string npm puts in `dist.integrity`, for checking what arrived. */
function sha512(data) {
  return 'sha512-' + crypto.createHash('sha512').update(data).digest('base64')
}

class Registry {
  constructor(token) {
    this.token = token
    this.packuments = new Map() // name -> packument
    this.tarballs = new Map() // '/<name>/-/<file>' -> Buffer
    this.published = []
    this.unhandled = [] // requests it had no answer for, to explain failures
    this.server = http.createServer((req, res) => this.handle(req, res).catch((error) => send(res, 500, { error: String(error) })))
  }

  async listen() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${this.server.address().port}/`
  }

  close() {
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(resolve))
  }

  async handle(req, res) {
    const { pathname } = new URL(req.url, this.url)
    if (req.method === 'PUT' && !pathname.includes('/-/')) return this.publish(req, res, packageNameFromPath(pathname))
    if (req.method === 'GET' && this.tarballs.has(pathname)) return send(res, 200, this.tarballs.get(pathname))
    if (req.method === 'GET' && this.packuments.has(packageNameFromPath(pathname))) {
      return send(res, 200, this.packuments.get(packageNameFromPath(pathname)))
    }
    if (req.method !== 'GET') this.unhandled.push(`${req.method} ${pathname}`)
    return send(res, 404, { error: 'not found' })
  }

  /** Takes one `npm publish`: a packument with the tarball attached. */
  async publish(req, res, name) {
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(res, 401, { error: 'bad or missing token' })
    const body = JSON.parse((await readBody(req)).toString('utf8'))
    if (body.name !== name) return send(res, 400, { error: `body names ${body.name}, URL names ${name}` })
    const packument = this.packuments.get(name) || { _id: name, name, 'dist-tags': {}, versions: {}, time: {} }
    const versions = Object.keys(body.versions || {})
    if (versions.length !== 1) return send(res, 400, { error: 'expected exactly one version' })
    const [version] = versions
    // The same words as the public registry, which `napi prepublish` looks for.
    if (packument.versions[version]) return send(res, 403, { error: 'You cannot publish over the previously published versions' })

    const manifest = body.versions[version]
    const [file, attachment] = Object.entries(body._attachments || {})[0] || []
    if (!attachment) return send(res, 400, { error: 'no tarball attached' })
    const tarball = Buffer.from(attachment.data, 'base64')
    if (manifest.dist.integrity && manifest.dist.integrity !== sha512(tarball)) {
      return send(res, 400, { error: `tarball does not match ${manifest.dist.integrity}` })
    }
    const tarballPath = `/${name}/-/${file.split('/').pop()}`
    this.tarballs.set(tarballPath, tarball)
    manifest.dist.tarball = new URL(tarballPath.slice(1), this.url).href

    packument.versions[version] = manifest
    Object.assign(packument['dist-tags'], body['dist-tags'])
    packument.time[version] = new Date().toISOString()
    this.packuments.set(name, packument)
    this.published.push({ name, version })
    return send(res, 201, { ok: true })
  }
}

async function startRegistry({ token }) {
  const registry = new Registry(token)
  await registry.listen()
  return registry
}

module.exports = { startRegistry }
