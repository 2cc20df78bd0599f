'use strict'
// Chooses the flooder: benchmark/flooder.c built with the system C compiler
// into a temporary folder, or the Node fallback when there is no compiler.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const SOURCE = path.join(__dirname, '..', 'flooder.c')
const FALLBACK = path.join(__dirname, '..', 'workers', 'flooder.js')

/** { command, args, kind, note? }: how flood.js starts the flooder; `dispose()` removes the build. */
function prepareFlooder() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-flooder-'))
  const binary = path.join(folder, 'flooder')
  for (const compiler of ['cc', 'gcc', 'clang']) {
    const build = spawnSync(compiler, ['-O2', '-o', binary, SOURCE], { encoding: 'utf8' })
    if (build.status === 0) {
      const dispose = () => fs.rmSync(folder, { recursive: true, force: true })
      return { command: binary, args: [], kind: `C, sendmmsg (${compiler})`, dispose }
    }
  }
  fs.rmSync(folder, { recursive: true, force: true })
  return {
    command: process.execPath,
    args: [FALLBACK],
    kind: 'Node dgram (no C compiler found)',
    note: 'No C compiler: the Node flooder may not reach the asked rate; see the achieved rate.',
    dispose: () => {},
  }
}

module.exports = { prepareFlooder }
