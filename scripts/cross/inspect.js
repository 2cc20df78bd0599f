'use strict'
// Checks a built addon without running it: the file format and CPU, the
// libraries it needs (only ones every machine of that platform has), the
// glibc floor, and the entry point Node looks for. ELF and Mach-O are read
// with rustup's llvm-tools; Windows DLLs by windows-msvc.js, which knows
// which DLLs every Windows has.

const path = require('node:path')
const { run } = require('./toolchain')
const { checkWindowsDll } = require('./windows-msvc')

/** Libraries a binary may need, per platform family: all ship with the OS. */
const ALLOWED = {
  glibc: /^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux[-\w.]*\.so\.\d)$/,
  // musl's loader answers for libc/libm/libdl/libpthread itself, whatever the suffix.
  musl: /^(libc\.so|libc\.musl-[\w]+\.so\.1|libgcc_s\.so\.1)$/,
  macho: /^\/usr\/lib\/(libSystem\.B|libiconv\.2|libcharset\.1)\.dylib$/,
}

const ARCH_NAMES = { x86_64: ['x86_64', 'x86-64'], aarch64: ['aarch64', 'arm64'], arm: ['arm'] }

function readobj(tools, args) {
  return run(path.join(tools, 'llvm-readobj'), args)
}

function headers(tools, file) {
  const text = readobj(tools, ['--file-headers', file])
  const field = (name) => (new RegExp(`^${name}: (.*)$`, 'm').exec(text) || [])[1] || '?'
  return { format: field('Format'), arch: field('Arch'), text }
}

function bracketList(text, heading) {
  const match = new RegExp(`${heading} \\[\\n([\\s\\S]*?)\\n\\s*\\]`).exec(text)
  return match ? match[1].split('\n').map((l) => l.trim()).filter(Boolean) : []
}

function elfNeeds(tools, file) {
  return bracketList(readobj(tools, ['--needed-libs', file]), 'NeededLibraries')
}

function glibcFloor(tools, file) {
  const versions = run(path.join(tools, 'llvm-objdump'), ['-T', file]).match(/GLIBC_[\d.]+/g) || []
  const numbers = versions.map((v) => v.slice(6).split('.').map(Number))
  numbers.sort((a, b) => a[0] - b[0] || (a[1] || 0) - (b[1] || 0) || (a[2] || 0) - (b[2] || 0))
  return numbers.length ? numbers[numbers.length - 1].join('.') : null
}

function machoNeeds(tools, file) {
  return run(path.join(tools, 'llvm-objdump'), ['--macho', '--dylibs-used', file])
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(' (')[0])
    .filter(Boolean)
    // The first entry is the library's own install name.
    .slice(1)
}

function exportsEntryPoint(tools, file, kind) {
  const args = kind === 'elf' ? ['-D', '--defined-only'] : ['--extern-only', '--defined-only']
  return /\s_?napi_register_module_v1$/m.test(run(path.join(tools, 'llvm-nm'), [...args, file]))
}

/** Compares a glibc version string with the floor; true when at most the floor. */
function withinFloor(version, floor) {
  const [a, b] = [version, floor].map((v) => v.split('.').map(Number))
  return a[0] < b[0] || (a[0] === b[0] && (a[1] || 0) <= (b[1] || 0))
}

/**
 * Inspects `file` built for `target`. Returns `{ ok, summary, problems }`:
 * `summary` is one line for the table's notes.
 */
function inspect(tools, file, target, glibcLimit) {
  if (target.format.kind === 'pe') return inspectWindows(file)
  const problems = []
  const { format, arch } = headers(tools, file)
  const kind = target.format.kind
  const formatOk = { elf: /^elf/, macho: /^Mach-O/ }[kind].test(format)
  if (!formatOk) problems.push(`format ${format}, expected ${kind}`)
  if (!ARCH_NAMES[target.format.arch].includes(arch)) problems.push(`architecture ${arch}, expected ${target.format.arch}`)
  const needs = kind === 'elf' ? elfNeeds(tools, file) : machoNeeds(tools, file)
  const allowed = ALLOWED[kind === 'elf' ? target.libc : kind]
  const strangers = needs.filter((lib) => !allowed.test(path.basename(lib)) && !allowed.test(lib))
  if (strangers.length) problems.push(`needs libraries a user may not have: ${strangers.join(', ')}`)
  let floor = ''
  if (kind === 'elf' && target.libc === 'glibc') {
    const needed = glibcFloor(tools, file)
    floor = needed ? `, glibc ≥ ${needed}` : ''
    if (needed && !withinFloor(needed, glibcLimit)) problems.push(`needs glibc ${needed}, above the floor ${glibcLimit}`)
  }
  if (!exportsEntryPoint(tools, file, kind)) problems.push('does not export napi_register_module_v1')
  const summary = `${format} ${arch}${floor}; needs ${needs.map((l) => path.basename(l)).join(' ') || 'nothing'}`
  return { ok: problems.length === 0, summary, problems }
}

function inspectWindows(file) {
  const { ok, details } = checkWindowsDll(file)
  const summary = `${details.format} ${details.machine} DLL; needs ${(details.imports || []).join(' ')}`
  return { ok, summary, problems: details.problems }
}

module.exports = { inspect, glibcFloor, withinFloor }
