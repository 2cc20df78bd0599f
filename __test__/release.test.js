'use strict'
// The release rehearsal (scripts/release-rehearsal.js): stage, publish to a
// registry on 127.0.0.1, install as a consumer without Rust, load, hand over.
// This machine's binary comes from the checkout's build (`npm run build`);
// the other platforms take part when artifacts/ holds all of their binaries
// (`npm run cross`), and are left out otherwise so that the test needs no
// cross toolchain. Port 23510.

const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { startRegistry } = require('../test-support/registry')
const { tempDir } = require('../test-support/loopback')

const ROOT = path.join(__dirname, '..')
const ALL = [
  'linux-x64-gnu',
  'linux-arm64-gnu',
  'linux-arm-gnueabihf',
  'linux-x64-musl',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]
const HOST = 'linux-x64-gnu'

function run(command, args, options) {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024, ...options }, (error, stdout, stderr) =>
      resolve({ code: error ? error.code : 0, stdout, stderr }),
    )
  })
}

/** The rehearsal's table as { platform: { picked, manifest, binary, loads, handover } }. */
function parseTable(stdout) {
  const lines = stdout.split('\n')
  const header = lines.findIndex((l) => l.startsWith('platform '))
  const rows = {}
  for (const line of lines.slice(header + 2)) {
    const cells = line.split(/ {2,}/)
    if (cells.length < 6) break
    const [platform, picked, manifest, binary, loads, handover] = cells
    rows[platform] = { picked, manifest, binary, loads, handover }
  }
  return rows
}

const platformsHere = () => (ALL.every((p) => fs.existsSync(path.join(ROOT, 'artifacts', `handover.${p}.node`))) ? ALL : [HOST])
const onHost = process.platform === 'linux' && process.arch === 'x64' && process.report.getReport().header.glibcVersionRuntime

;(onHost ? test : test.skip)(
  'a rehearsed release installs the right package on each platform it has a binary for, and hands over on this one',
  async () => {
    const platforms = platformsHere()
    const args = ['--local-build', '--port', '23510', ...(platforms.length < ALL.length ? ['--platforms', platforms.join(',')] : [])]
    const { code, stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'scripts', 'release-rehearsal.js'), ...args], { cwd: ROOT })
    const rows = parseTable(stdout)
    if (code !== 0) throw new Error(`rehearsal failed (exit ${code}):\n${stdout}\n${stderr.slice(-4000)}`)

    expect(Object.keys(rows).sort()).toEqual([...platforms].sort())
    expect(rows[HOST]).toEqual({
      picked: `handover-native-${HOST}`,
      manifest: 'ok',
      binary: expect.stringMatching(/^ok \(ELF x86-64 glibc\)$/),
      loads: 'ok (both names)',
      handover: expect.stringMatching(/^ok \(/),
    })
    for (const platform of platforms.filter((p) => p !== HOST)) {
      expect(rows[platform].picked).toBe(`handover-native-${platform}`)
      expect(rows[platform].manifest).toBe('ok')
      expect(rows[platform].binary).toMatch(/^ok /)
      expect(rows[platform].loads).toMatch(/^n\/a \(/)
    }
    expect(stdout).toContain('rehearsal passed')
  },
  120_000,
)

test('the rehearsal registry does not reach out: what was not published is a 404', async () => {
  const registry = await startRegistry({ token: 'fake' })
  const work = tempDir('handover-registry-test-')
  try {
    const env = { ...process.env, npm_config_cache: path.join(work, 'cache'), npm_config_registry: registry.url }
    const { code, stderr } = await run('npm', ['view', 'left-pad', 'version', '--registry', registry.url], { cwd: work, env })
    expect(code).not.toBe(0)
    expect(stderr).toMatch(/404/)
  } finally {
    await registry.close()
    fs.rmSync(work, { recursive: true, force: true })
  }
})

test('the rehearsal registry refuses a publish without the token and a second publish of a version', async () => {
  const registry = await startRegistry({ token: 'right' })
  const body = (version) =>
    JSON.stringify({
      name: 'demo',
      versions: { [version]: { name: 'demo', version, dist: {} } },
      'dist-tags': { latest: version },
      _attachments: { [`demo-${version}.tgz`]: { data: Buffer.from('tar').toString('base64') } },
    })
  const put = (token, version) =>
    fetch(new URL('demo', registry.url), { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: body(version) })
  try {
    expect((await put('wrong', '1.0.0')).status).toBe(401)
    expect((await put('right', '1.0.0')).status).toBe(201)
    expect((await put('right', '1.0.0')).status).toBe(403)
    const packument = await (await fetch(new URL('demo', registry.url))).json()
    expect(packument.versions['1.0.0'].dist.tarball).toBe(new URL('demo/-/demo-1.0.0.tgz', registry.url).href)
    expect(Buffer.from(await (await fetch(packument.versions['1.0.0'].dist.tarball)).arrayBuffer()).toString()).toBe('tar')
  } finally {
    await registry.close()
  }
})
