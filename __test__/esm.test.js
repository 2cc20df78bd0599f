'use strict'
// ES modules import the package's exports by name. Node finds the names of
// a CommonJS module's exports by scanning its source (cjs-module-lexer),
// which sees only simple forms: index.js must keep to them. Checked from
// plain ES modules, and from TypeScript consumers compiled with
// "module": "node16" and "nodenext" that import the package by its name.
// Nothing here listens or sends.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')

const ROOT = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')

/** The runtime (value) exports index.d.ts declares: classes, functions, constants. */
function declaredExports() {
  const types = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8')
  const names = [...types.matchAll(/^export\s+declare\s+(?:abstract\s+)?(?:class|function|const|let|var|enum)\s+(\w+)/gm)]
  return [...new Set(names.map((match) => match[1]))].sort()
}

function node(args, options = {}) {
  return execFileSync(process.execPath, args, { encoding: 'utf8', ...options })
}

test('index.d.ts declares the documented exports', () => {
  expect(declaredExports()).toEqual(
    expect.arrayContaining(['HandoverPeer', 'HandoverStatus', 'describePacket', 'encodeStatusMessage', 'resolveChannelSettings', 'settingDescriptions']),
  )
})

test('every export index.d.ts declares can be imported by name', () => {
  const names = declaredExports()
  const url = pathToFileURL(path.join(ROOT, 'index.js')).href
  const source = [
    `import { ${names.join(', ')} } from ${JSON.stringify(url)}`,
    `import * as namespace from ${JSON.stringify(url)}`,
    `const imported = { ${names.join(', ')} }`,
    'const types = Object.fromEntries(Object.entries(imported).map(([name, value]) => [name, typeof value]))',
    "const exported = Object.keys(namespace).filter((name) => name !== 'default').sort()",
    'console.log(JSON.stringify({ types, exported }))',
  ].join('\n')
  const { types, exported } = JSON.parse(node(['--input-type=module', '-e', source]))
  for (const name of names) expect([name, types[name]]).toEqual([name, 'function'])
  // Nothing the lexer finds is missing from the declarations, and the reverse.
  expect(exported).toEqual(names)
})

test('an .mjs file gets the same objects as require() does', () => {
  const result = JSON.parse(node([path.join(FIXTURES, 'esm-named.mjs')]))
  expect(result).toEqual({
    types: { HandoverPeer: 'function', HandoverStatus: 'function', describePacket: 'function', encodeStatusMessage: 'function' },
    sameAsRequire: true,
    namespace: ['HandoverPeer', 'HandoverRouter', 'HandoverStatus', 'SharedListener', 'describePacket', 'encodeStatusMessage', 'listenShared', 'resolveChannelSettings', 'settingDescriptions'],
    packet: { kind: 'status', timestamp: 1700000000000, serviceName: 'api', addresses: ['10.0.0.1'], status: 'UP' },
  })
})

describe('a TypeScript consumer importing the package by name', () => {
  let dir
  afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }))

  test.each(['node16', 'nodenext'])('compiles and runs with "module" and "moduleResolution": "%s"', (mode) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `handover-ts-${mode}-`))
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'handover-native'), 'dir')
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
    for (const file of ['consumer.mts', 'consumer.cts']) {
      fs.copyFileSync(path.join(FIXTURES, 'ts-consumer', file), path.join(dir, file))
    }
    const tsconfig = {
      compilerOptions: {
        module: mode,
        moduleResolution: mode,
        strict: true,
        outDir: 'out',
        rootDir: '.',
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: ['consumer.mts', 'consumer.cts'],
    }
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))

    const tsc = require.resolve('typescript/bin/tsc')
    try {
      node([tsc, '-p', dir])
    } catch (error) {
      throw new Error(`tsc failed:\n${error.stdout}${error.stderr}`)
    }

    const env = { ...process.env }
    delete env.SHUTDOWN_PORT
    delete env.HANDOVER_STATUS_PORT
    const esm = JSON.parse(node([path.join(dir, 'out', 'consumer.mjs')], { cwd: dir, env }))
    expect(esm).toEqual({ format: 'esm', shutdownPort: 23790, serviceName: 'api', sameAsDefault: true })
    const cjs = JSON.parse(node([path.join(dir, 'out', 'consumer.cjs')], { cwd: dir, env }))
    expect(cjs).toEqual({ format: 'cjs', shutdownPort: 23792, status: 'DOWN' })
    // The compiled CommonJS file loads the package by name, not a path.
    expect(fs.readFileSync(path.join(dir, 'out', 'consumer.cjs'), 'utf8')).toContain('require("handover-native")')
  }, 60_000)
})
