'use strict'
// Links `cargo build --release --target x86_64-pc-windows-msvc` on Linux,
// without Visual Studio or the Windows SDK (neither can be downloaded here).
//
// rustc compiles for the target by itself; what the link step lacks is what
// link.exe would find in the SDK and in MSVC: import libraries for the system
// DLLs that std names (kernel32.lib, ntdll.lib, ...) and msvcrt.lib. We make
// them with zig (PyPI `ziglang`): its llvm-dlltool turns the mingw-w64 .def
// files that ship inside zig into COFF import libraries, and the link itself
// is done by rustc's own rust-lld, which reads the LIB variable like link.exe.
//
// msvcrt.lib is two things in MSVC, and both are made here:
//  - import stubs for the C runtime DLLs: the Universal CRT through its
//    api-ms-win-crt-* API sets (part of Windows 10+), and the handful of
//    "vcruntime" functions Rust needs (memcpy, memmove, memcmp, the C++
//    exception machinery that panics unwind with). By default those come from
//    ucrtbase.dll, which exports them too, rather than VCRUNTIME140.dll: the
//    latter belongs to the Visual C++ redistributable, is not part of Windows,
//    and Node.js does not bring it (node.exe links its C runtime statically).
//  - a small static part: the DLL entry point, the TLS directory, __chkstk,
//    _fltused and the type_info vtable. It is CRT_STUB_C below, built with
//    zig cc.
//
//   node scripts/cross/windows-msvc.js            prepare, print the env
//   node scripts/cross/windows-msvc.js some.dll   check a built DLL

const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { promisify } = require('node:util')

const execFileAsync = promisify(execFile)

const RUST_TARGET_ENV = 'X86_64_PC_WINDOWS_MSVC'

// Import libraries for system DLLs. The first five are what std's link line
// names today; the others are ones crates commonly name in #[link]. When the
// linker says "could not open 'x.lib'", add x here (if mingw-w64 has x.def).
const SYSTEM_LIBS = [
  'kernel32', 'ntdll', 'userenv', 'ws2_32', 'dbghelp',
  'advapi32', 'bcrypt', 'bcryptprimitives', 'iphlpapi', 'ole32', 'oleaut32',
  'shell32', 'user32', 'secur32', 'crypt32',
]

// DLLs every Windows 10 or later has. VCRUNTIME140.dll is not one of them.
const WINDOWS_DLLS = new Set([
  ...SYSTEM_LIBS.map((name) => `${name}.dll`),
  'kernelbase.dll', 'ucrtbase.dll', 'msvcrt.dll',
])
const API_SET = /^api-ms-win-(crt|core)-[a-z0-9-]+\.dll$/

// The static part of msvcrt.lib that Rust needs, written for this link.
// Every symbol it defines is removed from the import stubs (STUB_SYMBOLS), so
// there is exactly one definition of each.
const STUB_SYMBOLS = ['_DllMainCRTStartup', '_tls_used', '_tls_index', '__chkstk', '_fltused', '??_7type_info@@6B@']
const CRT_STUB_C = String.raw`
typedef void (*init_fn)(void);
typedef int (*init_int_fn)(void);
typedef void (*tls_callback)(void *module, unsigned long reason, void *reserved);

/* Bounds of the initializer tables. The linker sorts sections named
   ".CRT$X..." by their suffix, so whatever other objects put in ".CRT$XCU"
   (the ctor crate: napi-rs registers every #[napi] item this way) lands
   between the A and Z entries. They are const so that they share the
   read-only characteristics of Rust's entries and end up in the same output
   section. Unused gaps are zero, hence the null checks when calling. */
__attribute__((section(".CRT$XIA"), used)) const init_int_fn __stub_xi_a = 0;
__attribute__((section(".CRT$XIZ"), used)) const init_int_fn __stub_xi_z = 0;
__attribute__((section(".CRT$XCA"), used)) const init_fn __stub_xc_a = 0;
__attribute__((section(".CRT$XCZ"), used)) const init_fn __stub_xc_z = 0;

/* Implicit TLS (Rust's #[thread_local], used by std and tokio). The loader
   finds the template through _tls_used (the PE TLS directory: lld points the
   header at this symbol), allocates a copy per thread and stores this
   module's slot in _tls_index. The template is everything in ".tls$*",
   bracketed by ".tls" and ".tls$ZZZ". TLS callbacks (std's thread-local
   destructors sit in ".CRT$XLB") are the null-terminated list after
   __stub_xl_a. Without this, thread locals would silently alias slot 0. */
unsigned int _tls_index = 0;
__attribute__((section(".tls"), used)) char __stub_tls_start = 0;
__attribute__((section(".tls$ZZZ"), used)) char __stub_tls_end = 0;
__attribute__((section(".CRT$XLA"), used)) const tls_callback __stub_xl_a = 0;
__attribute__((section(".CRT$XLZ"), used)) const tls_callback __stub_xl_z = 0;

struct tls_directory {
  void *start, *end;
  unsigned int *index;
  const tls_callback *callbacks;
  unsigned int zero_fill, characteristics;
};
__attribute__((section(".rdata$T"), used)) const struct tls_directory _tls_used = {
  &__stub_tls_start, &__stub_tls_end, &_tls_index, &__stub_xl_a + 1, 0, 0,
};

/* The MSVC marker that a module uses floating point; only its presence matters. */
int _fltused = 0x9875;

/* Keeps the compiler from reasoning about pointers that walk from one
   object (the A entry) to another (the Z entry). */
static const void *opaque(const void *p) {
  __asm__("" : "+r"(p));
  return p;
}

/* The DLL entry point. On load it runs the C and C++-style initializers, as
   MSVC's entry does; without them no #[napi] export would be registered.
   Nothing else of MSVC's entry applies: Rust uses no /GS cookie and no atexit
   table (neither _security_cookie nor atexit is provided, so a dependency
   that needs one fails to link instead of misbehaving), and TLS callbacks
   are called by the loader itself. */
int __stdcall _DllMainCRTStartup(void *module, unsigned long reason, void *reserved) {
  (void)module;
  (void)reserved;
  if (reason != 1 /* DLL_PROCESS_ATTACH */) return 1;
  for (const init_int_fn *p = opaque(&__stub_xi_a + 1); p < (const init_int_fn *)opaque(&__stub_xi_z); ++p)
    if (*p && (*p)() != 0) return 0;
  for (const init_fn *p = opaque(&__stub_xc_a + 1); p < (const init_fn *)opaque(&__stub_xc_z); ++p)
    if (*p) (*p)();
  return 1;
}

/* Stack probe that LLVM calls before a frame larger than a page: touches each
   page from the caller's stack pointer down to rsp - rax, in order, so the
   guard page grows the stack one page at a time. rax is the frame size and is
   preserved; only r10, r11 and flags change (what LLVM assumes of the call).
   It never moves rsp, so it needs no unwind information. */
__asm__(
  ".text\n"
  ".globl __chkstk\n"
  "__chkstk:\n"
  "  leaq 8(%rsp), %r10\n"
  "  movq %rax, %r11\n"
  "1:\n"
  "  cmpq $0x1000, %r11\n"
  "  jb 2f\n"
  "  subq $0x1000, %r10\n"
  "  testq %r10, (%r10)\n"
  "  subq $0x1000, %r11\n"
  "  jmp 1b\n"
  "2:\n"
  "  subq %r11, %r10\n"
  "  testq %r10, (%r10)\n"
  "  retq\n");

/* std::type_info's vtable. Rust's panic_unwind points the type descriptors of
   its exceptions at it; the C++ runtime matches types by descriptor and name
   and never calls through it. MSVC has it in the static part of msvcrt.lib as
   well, so it is defined, not imported. The slot before it is the RTTI
   locator, unused here. */
static void *type_info_destructor(void *self, unsigned flags) {
  (void)flags;
  return self;
}
__attribute__((used)) const struct { const void *locator; void *(*destructor)(void *, unsigned); }
  __stub_type_info_vtable = { 0, type_info_destructor };
__asm__(
  ".globl \"??_7type_info@@6B@\"\n"
  ".set \"??_7type_info@@6B@\", __stub_type_info_vtable + 8\n");
`

/** zig, from $ZIG or else the PyPI package. */
function zigCommand() {
  return process.env.ZIG ? [process.env.ZIG] : ['python3', '-m', 'ziglang']
}

async function zig(args, { cwd } = {}) {
  const [command, ...prefix] = zigCommand()
  try {
    const { stdout } = await execFileAsync(command, [...prefix, ...args], { cwd, maxBuffer: 64 * 1024 * 1024 })
    return stdout
  } catch (error) {
    if (error.code === 'ENOENT' || /No module named ziglang/.test(error.stderr || '')) {
      throw new Error(`zig not found (${zigCommand().join(' ')}): pip install ziglang==0.17.1, as scripts/cross/toolchain.js ensureZig() does, or set ZIG`)
    }
    const output = `${error.stdout || ''}${error.stderr || ''}`.trim().split('\n').slice(-15).join('\n')
    throw new Error(`zig ${args.join(' ')} failed: ${output || error.message}`)
  }
}

/** zig's version and where its mingw-w64 sources are. */
async function zigInfo() {
  const version = (await zig(['version'])).trim()
  // `zig env` prints ZON (`.lib_dir = "..."`) in 0.14+, JSON before.
  const match = /lib_dir"?\s*[=:]\s*"((?:[^"\\]|\\.)*)"/.exec(await zig(['env']))
  if (!match) throw new Error('zig env: no lib_dir')
  const mingw = path.join(JSON.parse(`"${match[1]}"`), 'libc', 'mingw')
  if (!fs.existsSync(path.join(mingw, 'lib-common'))) throw new Error(`no mingw-w64 .def files in ${mingw}`)
  return { version, mingw }
}

/** mingw-w64's .def (or .def.in, to be preprocessed) for a DLL; x64-specific ones first. */
function findDef(mingw, name) {
  for (const dir of ['lib64', 'lib-common']) {
    for (const suffix of ['.def', '.def.in']) {
      const file = path.join(mingw, dir, name + suffix)
      if (fs.existsSync(file)) return file
    }
  }
  throw new Error(`mingw-w64 has no .def for ${name}`)
}

// Drops i386 stdcall decorations ("WSAStartup@8"), which some shared .def
// files keep; on x64 the symbol is plain. C++ names (starting with '?') and
// ordinals ("@12" as a word of its own) are left as they are.
const undecorate = (word) => word.replace(/^([^?@;][^@]*)@\d+$/, '$1')

/**
 * Reads a .def the way mingw-w64's build does (through the C preprocessor,
 * with the macros for x86_64) into { library, exports: [{ name, line }] }.
 */
async function readDef(mingw, name) {
  const text = await zig([
    'cc', '-E', '-P', '-x', 'c', '-undef', '-D__x86_64__', '-w',
    '-I', path.join(mingw, 'def-include'), '-o', '-', findDef(mingw, name),
  ])
  let library = null
  let inExports = false
  const exports = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/;.*/, '').trim()
    if (!line) continue
    const libraryMatch = /^LIBRARY\s+"?([^"\s]+)"?/i.exec(line)
    if (libraryMatch) library = libraryMatch[1]
    else if (/^EXPORTS$/i.test(line)) inExports = true
    else if (inExports) {
      const words = line.split(/\s+/).map(undecorate)
      exports.push({ name: words[0], line: words.join(' ') })
    }
  }
  if (!library) throw new Error(`${name}.def names no LIBRARY`)
  return { library, exports }
}

async function writeImportLib(def, outFile) {
  const defFile = `${outFile}.def`
  fs.writeFileSync(defFile, `LIBRARY "${def.library}"\nEXPORTS\n${def.exports.map((e) => e.line).join('\n')}\n`)
  await zig(['dlltool', '-m', 'i386:x86-64', '-d', defFile, '-l', outFile])
}

/**
 * The DLLs behind msvcrt.lib, in order of preference: the vcruntime part
 * first (from ucrtbase.dll, or VCRUNTIME140.dll when asked for), then the
 * Universal CRT's API sets. Each symbol is kept in its first provider only,
 * so which DLL a function comes from never depends on archive order.
 */
async function crtProviders(mingw, vcruntime) {
  const vcruntimeDef = await readDef(mingw, 'vcruntime140')
  let first = vcruntimeDef
  if (vcruntime === 'ucrtbase') {
    const wanted = new Set(vcruntimeDef.exports.map((e) => e.name))
    const ucrtbase = await readDef(mingw, 'ucrtbase')
    first = { library: ucrtbase.library, exports: ucrtbase.exports.filter((e) => wanted.has(e.name)) }
  } else if (vcruntime !== 'vcruntime140') {
    throw new Error(`vcruntime: expected 'ucrtbase' or 'vcruntime140', got ${vcruntime}`)
  }
  // The private API set is vcruntime's own back door into the UCRT; MSVC's ucrt.lib leaves it out too.
  const apiSets = fs.readdirSync(path.join(mingw, 'lib-common'))
    .map((file) => /^(api-ms-win-crt-[a-z]+-l1-1-0)\.def(\.in)?$/.exec(file))
    .filter((match) => match && !match[1].includes('-private-'))
    .map((match) => match[1])
    .sort()
  const providers = [first]
  for (const name of apiSets) providers.push(await readDef(mingw, name))
  const claimed = new Set(STUB_SYMBOLS)
  for (const provider of providers) {
    provider.exports = provider.exports.filter((e) => !claimed.has(e.name))
    for (const e of provider.exports) claimed.add(e.name)
  }
  return providers
}

/** msvcrt.lib: the static stub object plus the import stubs of every CRT provider, in one archive. */
async function buildMsvcrt(mingw, libDir, vcruntime) {
  const work = path.join(libDir, 'crt-parts')
  fs.mkdirSync(work, { recursive: true })
  const stubSource = path.join(work, 'crt-stub.c')
  const stubObject = path.join(work, 'crt-stub.obj')
  fs.writeFileSync(stubSource, CRT_STUB_C)
  await zig(['cc', '-target', 'x86_64-windows-msvc', '-O2', '-g0', '-c', stubSource, '-o', stubObject])
  const parts = ['crt-stub.obj']
  for (const provider of await crtProviders(mingw, vcruntime)) {
    const lib = `${provider.library.replace(/\.dll$/i, '')}.lib`
    await writeImportLib(provider, path.join(work, lib))
    parts.push(lib)
  }
  // Relative names, so the archive's member names do not carry this machine's paths.
  await zig(['lib', `/out:${path.join(libDir, 'msvcrt.lib')}`, ...parts], { cwd: work })
  // With -C target-feature=+crt-static rustc asks for libcmt.lib instead. There is no static
  // CRT to be had here; the same library gives the same result (no redistributable needed).
  fs.copyFileSync(path.join(libDir, 'msvcrt.lib'), path.join(libDir, 'libcmt.lib'))
}

async function buildLibDir(mingw, libDir, vcruntime) {
  fs.mkdirSync(libDir, { recursive: true })
  for (const name of SYSTEM_LIBS) await writeImportLib(await readDef(mingw, name), path.join(libDir, `${name}.lib`))
  await buildMsvcrt(mingw, libDir, vcruntime)
}

/**
 * Makes (once; cached under cacheDir by zig version, this file and the
 * options) the folder of import libraries, and returns what to add to
 * `cargo build --release --target x86_64-pc-windows-msvc`:
 *   env        the linker (rustc's rust-lld) and LIB, where lld-link, like
 *              link.exe, looks for kernel32.lib, msvcrt.lib, ...
 *   rustflags  none are needed (LIB does the job without touching RUSTFLAGS,
 *              which would override a target's configured rustflags); kept
 *              so callers can merge it the same way for every target.
 *   libDir     the folder itself.
 * vcruntime: 'ucrtbase' (default; the DLL needs nothing outside Windows) or
 * 'vcruntime140' (what MSVC does: needs the Visual C++ redistributable).
 */
async function prepareWindowsMsvc({ cacheDir, vcruntime = 'ucrtbase' } = {}) {
  if (!cacheDir) throw new Error('prepareWindowsMsvc: cacheDir is required')
  const { version, mingw } = await zigInfo()
  const key = crypto.createHash('sha256')
    .update(JSON.stringify({ version, vcruntime, script: fs.readFileSync(__filename, 'utf8') }))
    .digest('hex').slice(0, 16)
  const libDir = path.resolve(cacheDir, `${vcruntime}-${key}`)
  if (!fs.existsSync(path.join(libDir, 'msvcrt.lib'))) {
    // Build beside it and rename, so an interrupted run never leaves a half-made folder behind;
    // if another run finished first, keep its folder (a build may be using it).
    const partial = `${libDir}.partial-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
    fs.rmSync(partial, { recursive: true, force: true })
    await buildLibDir(mingw, partial, vcruntime)
    if (!fs.existsSync(path.join(libDir, 'msvcrt.lib'))) {
      fs.rmSync(libDir, { recursive: true, force: true })
      fs.renameSync(partial, libDir)
    }
    fs.rmSync(partial, { recursive: true, force: true })
  }
  return {
    env: { [`CARGO_TARGET_${RUST_TARGET_ENV}_LINKER`]: 'rust-lld', LIB: libDir },
    rustflags: [],
    libDir,
  }
}

// ---- Checking the result without Windows: a minimal PE reader. ----

const MACHINES = { 0x8664: 'x86-64', 0x14c: 'i386', 0xaa64: 'arm64' }
const IMAGE_FILE_DLL = 0x2000
const PE32_PLUS = 0x20b
const DIR = { export: 0, import: 1, tls: 9, delayImport: 13 }

function readPe(buf) {
  if (buf.length < 64 || buf.toString('latin1', 0, 2) !== 'MZ') throw new Error('not a PE file (no MZ header)')
  const pe = buf.readUInt32LE(0x3c)
  if (buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new Error('not a PE file (no PE signature)')
  const coff = pe + 4
  const optional = coff + 20
  const magic = buf.readUInt16LE(optional)
  const dirTable = optional + (magic === PE32_PLUS ? 112 : 96)
  const dirCount = buf.readUInt32LE(dirTable - 4)
  const sectionTable = optional + buf.readUInt16LE(coff + 16)
  const sections = []
  for (let i = 0; i < buf.readUInt16LE(coff + 2); i++) {
    const at = sectionTable + 40 * i
    sections.push({
      size: Math.max(buf.readUInt32LE(at + 8), buf.readUInt32LE(at + 16)),
      rva: buf.readUInt32LE(at + 12),
      raw: buf.readUInt32LE(at + 20),
    })
  }
  const offset = (rva) => {
    const s = sections.find((x) => rva >= x.rva && rva < x.rva + x.size)
    if (!s) throw new Error(`RVA 0x${rva.toString(16)} is in no section`)
    return s.raw + rva - s.rva
  }
  const cString = (rva) => {
    const start = offset(rva)
    return buf.toString('latin1', start, buf.indexOf(0, start))
  }
  const dir = (index) => (index < dirCount ? buf.readUInt32LE(dirTable + 8 * index) : 0)
  return {
    machine: MACHINES[buf.readUInt16LE(coff)] || `0x${buf.readUInt16LE(coff).toString(16)}`,
    isDll: (buf.readUInt16LE(coff + 18) & IMAGE_FILE_DLL) !== 0,
    format: magic === PE32_PLUS ? 'PE32+' : magic === 0x10b ? 'PE32' : `magic 0x${magic.toString(16)}`,
    hasTls: dir(DIR.tls) !== 0,
    buf, offset, cString, dir,
  }
}

/** Names of the DLLs in an import table whose entries are `size` bytes, name RVA at `nameAt`. */
function importedDlls(image, dirIndex, size, nameAt) {
  const names = []
  const table = image.dir(dirIndex)
  if (!table) return names
  for (let at = image.offset(table); ; at += size) {
    const nameRva = image.buf.readUInt32LE(at + nameAt)
    if (nameRva === 0) return names
    names.push(image.cString(nameRva))
  }
}

function exportedNames(image) {
  const table = image.dir(DIR.export)
  if (!table) return []
  const at = image.offset(table)
  const count = image.buf.readUInt32LE(at + 24)
  const namesAt = image.offset(image.buf.readUInt32LE(at + 32))
  return Array.from({ length: count }, (_, i) => image.cString(image.buf.readUInt32LE(namesAt + 4 * i)))
}

/**
 * Checks a built handover.dll: PE32+ DLL for x86-64, imports only DLLs that
 * every Windows 10+ has, exports napi_register_module_v1. Returns
 * { ok, details: { format, machine, dll, imports, delayImports, exports, problems } }.
 */
function checkWindowsDll(file, { allowVcruntime = false } = {}) {
  const problems = []
  let image
  try {
    image = readPe(fs.readFileSync(file))
  } catch (error) {
    return { ok: false, details: { problems: [`${file}: ${error.message}`] } }
  }
  const imports = importedDlls(image, DIR.import, 20, 12)
  const delayImports = importedDlls(image, DIR.delayImport, 32, 4)
  const exports = exportedNames(image)
  if (image.format !== 'PE32+') problems.push(`format is ${image.format}, not PE32+`)
  if (image.machine !== 'x86-64') problems.push(`machine is ${image.machine}, not x86-64`)
  if (!image.isDll) problems.push('not a DLL')
  for (const dll of [...imports, ...delayImports]) {
    const lower = dll.toLowerCase()
    if (WINDOWS_DLLS.has(lower) || API_SET.test(lower)) continue
    if (lower === 'vcruntime140.dll' && allowVcruntime) continue
    problems.push(`imports ${dll}, which Windows does not ship` +
      (lower === 'vcruntime140.dll' ? ' (Visual C++ redistributable; Node.js does not bring it either)' : ''))
  }
  if (!exports.includes('napi_register_module_v1')) problems.push('does not export napi_register_module_v1')
  return {
    ok: problems.length === 0,
    details: { format: image.format, machine: image.machine, dll: image.isDll, tls: image.hasTls, imports, delayImports, exports, problems },
  }
}

module.exports = { prepareWindowsMsvc, checkWindowsDll }

if (require.main === module) {
  const arg = process.argv[2]
  const main = async () => {
    if (arg) {
      const result = checkWindowsDll(arg)
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
      process.exitCode = result.ok ? 0 : 1
      return
    }
    const cacheDir = path.join(__dirname, '..', '..', '.cache', 'cross', 'windows-msvc')
    const { env } = await prepareWindowsMsvc({ cacheDir })
    for (const [name, value] of Object.entries(env)) process.stdout.write(`${name}=${value}\n`)
  }
  main().catch((error) => {
    process.stderr.write(`${error.message}\n`)
    process.exitCode = 1
  })
}
