'use strict'
// `npm run demo`, run as a child process: the handover must serve every
// request, and the demo must end by itself. It stays on loopback, on free
// ports and a multicast group of its own.

const { execFile } = require('node:child_process')
const path = require('node:path')

const DEMO = path.join(__dirname, '..', 'examples', 'demo.js')

/** The value of one `  name  value` row of the summary. */
function summaryRow(output, name) {
  const match = new RegExp(`^  ${name} +(.+)$`, 'm').exec(output)
  if (!match) throw new Error(`no '${name}' in the summary:\n${output}`)
  return match[1]
}

test('the demo hands over from v1 to v2 without failing a request, and exits by itself', async () => {
  const { code, signal, stdout, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, [DEMO], { timeout: 25000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, signal: error ? error.signal : null, stdout, stderr })
    })
  })
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`

  expect({ code, signal, context }).toEqual({ code: 0, signal: null, context })
  expect(Number(summaryRow(stdout, 'requests served by v1'))).toBeGreaterThan(0)
  expect(Number(summaryRow(stdout, 'requests served by v2'))).toBeGreaterThan(0)
  expect(summaryRow(stdout, 'requests failed')).toBe('0')
  expect(summaryRow(stdout, 'v1 complete file')).toMatch(/^written \(.*v1\/handover-complete\)$/)
  expect(summaryRow(stdout, 'v1 stopped by')).toBe('supervisor, SIGTERM after its handover-complete file appeared')

  // The timeline tells the story in order (only steps that cause one another:
  // lines from different processes within a millisecond may come either way).
  const at = (step) => {
    const position = stdout.search(step)
    if (position < 0) throw new Error(`no ${step} in the timeline:\n${stdout}`)
    return position
  }
  const causes = [
    [/supervisor started v1/, /router +v1 is UP/],
    [/router +v1 is UP/, /supervisor started v2/],
    [/supervisor started v2/, /v1 +heard a younger instance/],
    [/v1 +heard a younger instance/, /v1 +DRAINED from demo-proxy/],
    [/v1 +DRAINED from demo-proxy/, /v1 +drained/],
    [/router +v1 is DOWN/, /supervisor handover-complete file appeared: stopping v1 with SIGTERM/],
    [/supervisor handover-complete file appeared: stopping v1 with SIGTERM/, /supervisor v1 exited \(killed by SIGTERM\)/],
  ]
  for (const [before, after] of causes) expect([before, at(before) < at(after), after]).toEqual([before, true, after])
  expect(stdout).toMatch(/^\+\d+\.\d{3}s supervisor /m)
})

const hasHAProxy = require('node:child_process').spawnSync('haproxy', ['-v']).status === 0

;(hasHAProxy ? test : test.skip)('the demo through HAProxy: the router drives it, v1 closes only after DRAINED, no failed request', async () => {
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, [DEMO, '--proxy', 'haproxy'], { timeout: 25000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`
  expect({ code, context }).toEqual({ code: 0, context })
  expect(summaryRow(stdout, 'proxy')).toBe('HAProxy (Runtime API)')
  expect(Number(summaryRow(stdout, 'requests served by v1'))).toBeGreaterThan(0)
  expect(Number(summaryRow(stdout, 'requests served by v2'))).toBeGreaterThan(0)
  expect(summaryRow(stdout, 'requests failed')).toBe('0')
  expect(summaryRow(stdout, 'v1 stopped by')).toBe('supervisor, SIGTERM after its handover-complete file appeared')
  const at = (step) => stdout.search(step)
  expect(at(/router +proxy confirmed v1's drain/)).toBeGreaterThan(0)
  expect(at(/v1 +DRAINED from demo-proxy/)).toBeGreaterThan(at(/router +v2 is UP/))
  expect(at(/v1 +drained: listener closed/)).toBeGreaterThan(at(/v1 +DRAINED from demo-proxy/))
})

test('the --host-network demo: both instances on one port (listenShared), no router, no failed request', async () => {
  if (process.platform !== 'linux') return
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, [DEMO, '--host-network'], { timeout: 25000 }, (error, stdout, stderr) => {
      resolve({ code: error ? error.code : 0, stdout, stderr })
    })
  })
  const context = `stdout:\n${stdout}\nstderr:\n${stderr}`
  expect({ code, context }).toEqual({ code: 0, context })
  expect(stdout).toMatch(/host network: both instances listen on http:\/\/127\.0\.0\.2:\d+\/ \(listenShared\)/)
  expect(Number(summaryRow(stdout, 'requests served by v1'))).toBeGreaterThan(0)
  expect(Number(summaryRow(stdout, 'requests served by v2'))).toBeGreaterThan(0)
  expect(summaryRow(stdout, 'requests failed')).toBe('0')
  expect(summaryRow(stdout, 'v1 stopped by')).toBe('supervisor, SIGTERM after its handover-complete file appeared')
})
