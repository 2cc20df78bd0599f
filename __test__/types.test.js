'use strict'
// index.d.ts covers the public API: a TypeScript file using all of it (and
// misusing some of it, marked @ts-expect-error) must compile.

const { execFileSync } = require('node:child_process')
const path = require('node:path')

test('index.d.ts accepts the documented API and refuses misuse', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const usage = path.join(__dirname, 'types', 'usage.ts')
  const run = () =>
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--types', 'node', usage], { encoding: 'utf8' })
  expect(run).not.toThrow()
}, 60_000)
