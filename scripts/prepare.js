// Builds the native addon from source when this package is installed from a
// git clone (a published tarball ships prebuilt binaries instead and has no
// Cargo.toml, so this does nothing there).
'use strict'
const { existsSync } = require('node:fs')
const { join } = require('node:path')
const { spawnSync } = require('node:child_process')

const root = join(__dirname, '..')
if (!existsSync(join(root, 'Cargo.toml'))) process.exit(0)

const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' })
process.exit(result.status === null ? 1 : result.status)
