'use strict'
// `npm run layers`: checks the crate's layer rule (docs/ARCHITECTURE.md) and
// prints a short report. Exit code 1 on a violation.
//
//   node scripts/layers.js [--graph]
//
// The rule:
//
// - The layers are the folders of src/, in this order:
//     protocol < config < io < channel < js
//   A module may use its own layer and the layers before it, never a later
//   one. A .rs file outside these folders (other than src/lib.rs, the crate
//   root, which only declares them) is a violation too: add the folder here.
// - No dependency cycle between modules, inside a layer or across layers.
//
// A module is a .rs file, or a folder's mod.rs (src/io/net/mod.rs is
// `io::net`, src/io/log.rs is `io::log`, src/io/log/line.rs `io::log::line`).
// Inline `mod x { … }` blocks belong to their file. The platform files that
// src/io/net/mod.rs loads with `#[path = "linux.rs"] mod sys;` are modules
// of their file's name (`io::net::linux`), and a use of the name they are
// mounted under (`sys::…`) is a use of every file mounted under it (linux.rs
// and other.rs), whatever the platform.
//
// A module uses another when its code names it: `use` lines (with their
// `{…}` groups), `crate::a::b::c` paths anywhere in the code, `super::` and
// `self::` paths, and paths through a child it declares (`use line::Text`,
// `sys::recv_batch()`). A path counts as a use of the longest module it
// names (`crate::io::log::iso_time` uses `io::log`). Declaring `mod child;`
// is not a use, nor is anything in comments or string literals.
//
// Test code: test-only files (tests.rs, fake.rs, fuzz.rs,
// state_machine_tests.rs) and inline `mod tests {` blocks may use any layer
// (a test builds its inputs with whatever is at hand), so their uses are
// left out of the layer rule. They are left out of the cycle check
// too, which is about the modules that ship: nothing outside a test uses
// test code, so test code can close no cycle among them.
//
// A private child (`mod limits;`, `#[path = "linux.rs"] mod sys;`, not
// `pub mod`) is its parent's own code split into a file: the parent
// re-exports it (`pub use limits::…`) or mounts it per platform, and the
// child reaches back with `super::`. So uses between a parent and a private
// child are left out of the cycle check; every other use counts, including
// those between a parent and a `pub mod` child (`channel::peer` uses
// `channel::ChannelError`, so `channel` may not use `channel::peer`).
//
// --graph prints every module, layer by layer, with what it uses.

const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const SRC = path.join(ROOT, 'src')
const LAYERS = ['protocol', 'config', 'io', 'channel', 'js']
const TEST_FILES = new Set(['tests.rs', 'fake.rs', 'fuzz.rs', 'state_machine_tests.rs'])

// ---------------------------------------------------------------- files

function rsFiles(dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...rsFiles(full))
    else if (entry.name.endsWith('.rs')) out.push(full)
  }
  return out.sort()
}

// src/io/net/mod.rs → ['io', 'net']; src/io/log.rs → ['io', 'log'].
function modulePathOf(file) {
  const parts = path.relative(SRC, file).split(path.sep)
  const last = parts.pop().replace(/\.rs$/, '')
  if (last !== 'mod' && !(parts.length === 0 && last === 'lib')) parts.push(last)
  return parts
}

// ---------------------------------------------------------------- lexing

// The code with comments and the contents of string and char literals
// blanked out (same length, newlines kept, so offsets still give lines).
function stripped(text) {
  const out = text.split('')
  const blank = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' '
  }
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text[i]
    const next = text[i + 1]
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i)
      const stop = end < 0 ? n : end
      blank(i, stop)
      i = stop
    } else if (c === '/' && next === '*') {
      let depth = 1
      let j = i + 2
      while (j < n && depth > 0) {
        if (text[j] === '/' && text[j + 1] === '*') {
          depth++
          j += 2
        } else if (text[j] === '*' && text[j + 1] === '/') {
          depth--
          j += 2
        } else j++
      }
      blank(i, j)
      i = j
    } else if ((c === 'r' || c === 'b') && !/\w/.test(text[i - 1] || ' ') && rawStringAt(text, i)) {
      const { bodyStart, end } = rawStringAt(text, i)
      blank(bodyStart, end)
      i = end
    } else if (c === '"') {
      let j = i + 1
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1
      blank(i + 1, j)
      i = j + 1
    } else if (c === "'") {
      // A char literal ('x', '\n', '\u{1F600}', b'x') or a lifetime ('a).
      if (next === '\\') {
        let j = i + 2
        while (j < n && text[j] !== "'") j++
        blank(i + 1, j)
        i = j + 1
      } else if (text[i + 2] === "'") {
        blank(i + 1, i + 2)
        i += 3
      } else {
        i++
      }
    } else {
      i++
    }
  }
  return out.join('')
}

// r"…", r#"…"#, br"…" at i: where its body starts and where it ends.
function rawStringAt(text, i) {
  const m = /^b?r(#*)"/.exec(text.slice(i, i + 40))
  if (!m) return null
  const close = '"' + m[1]
  const bodyStart = i + m[0].length
  const end = text.indexOf(close, bodyStart)
  return { bodyStart, end: end < 0 ? text.length : end + close.length }
}

// ---------------------------------------------------------------- one file

// What one file's code names: [{ path: ['crate', 'io', 'log'], scope, test, offset }].
// `scope` is the inline-module path at that point (for `super::`), `test`
// whether the point is inside a `mod tests {` block.
function namedPaths(code, childNames) {
  const found = []
  // Inline modules and brace depth, to know the scope of each offset.
  const stack = [] // { name, depth, test }
  let depth = 0
  const scopeAt = () => stack.map((s) => s.name)
  const inTest = () => stack.some((s) => s.test)

  const tokenRe = /(\bmod\s+([A-Za-z_]\w*)\s*\{)|(\{)|(\})|(\buse\s+[^;]*;)|((?:\b[A-Za-z_]\w*\s*::\s*)+[A-Za-z_]\w*)/g
  let m
  while ((m = tokenRe.exec(code))) {
    if (m[1]) {
      depth++
      stack.push({ name: m[2], depth, test: m[2] === 'tests' })
    } else if (m[3]) {
      depth++
    } else if (m[4]) {
      if (stack.length && stack[stack.length - 1].depth === depth) stack.pop()
      depth--
    } else if (m[5]) {
      const body = m[5].replace(/^use\s+/, '').replace(/;$/, '')
      for (const p of expandUseTree(body)) {
        found.push({ path: p, scope: scopeAt(), test: inTest(), offset: m.index })
      }
      // Braces inside a use line are not blocks.
    } else if (m[6]) {
      const segs = m[6].split('::').map((s) => s.trim())
      // Skip the tail of a longer path (`a::b::c` matched from `b`) and
      // paths that are not ours (std::, napi::, Level::Info…).
      const before = code.slice(Math.max(0, m.index - 2), m.index)
      if (before.endsWith('::')) continue
      if (['crate', 'super', 'self'].includes(segs[0]) || childNames.has(segs[0])) {
        found.push({ path: segs, scope: scopeAt(), test: inTest(), offset: m.index })
      }
    }
  }
  return found
}

// `crate::a::{self, b::{c, d}, e as f}` → [crate a], [crate a b c], [crate a b d], [crate a e].
function expandUseTree(text) {
  const tokens = text.match(/[A-Za-z_]\w*|::|[{},*]/g) || []
  let i = 0
  // One tree: `a::b::c [as x]`, `a::*`, or `a::{tree, tree}`.
  function tree(prefix) {
    const segs = []
    while (i < tokens.length) {
      const t = tokens[i]
      if (t === '{') {
        i++
        const out = []
        while (i < tokens.length && tokens[i] !== '}') {
          out.push(...tree(prefix.concat(segs)))
          if (tokens[i] === ',') i++
        }
        i++
        return out
      }
      if (t === '*') {
        i++
        break
      }
      if (!/^[A-Za-z_]/.test(t)) break
      segs.push(t)
      i++
      if (tokens[i] === '::') i++
      else {
        if (tokens[i] === 'as') i += 2
        break
      }
    }
    const full = prefix.concat(segs)
    if (full[full.length - 1] === 'self') full.pop()
    return full.length ? [full] : []
  }
  return tree([])
}

// `mod` lines with `#[path = "x.rs"]` above them: mounted name → file names.
function mountedFiles(code, rawText) {
  const mounts = new Map()
  const re = /#\[path\s*=\s*"([^"]+)"\s*\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_]\w*)\s*;/g
  let m
  while ((m = re.exec(rawText))) {
    const file = m[1].replace(/\.rs$/, '')
    if (!mounts.has(m[2])) mounts.set(m[2], [])
    mounts.get(m[2]).push(file)
  }
  return mounts
}

// `mod x;` lines: name → whether it is private (no `pub`).
function declaredChildren(code) {
  const names = new Map()
  const re = /(\bpub(?:\s*\([^)]*\))?\s+)?\bmod\s+([A-Za-z_]\w*)\s*;/g
  let m
  while ((m = re.exec(code))) names.set(m[2], !m[1] || names.get(m[2]) === true)
  return names
}

// ---------------------------------------------------------------- graph

function buildGraph() {
  const modules = new Map() // key 'io::net' → { key, file, layer, test, uses: Map(key → [{file, line, test}]) }
  const problems = []

  const files = rsFiles(SRC)
  for (const file of files) {
    const segs = modulePathOf(file)
    if (segs.length === 0) continue // src/lib.rs, the crate root
    const key = segs.join('::')
    const layer = segs[0]
    if (!LAYERS.includes(layer)) {
      problems.push(`${rel(file)}: module ${key} is in no layer (the layers are the folders ${LAYERS.join(', ')})`)
    }
    modules.set(key, { key, segs, file, layer, test: TEST_FILES.has(path.basename(file)), uses: new Map() })
  }

  // Platform files are mounted under another name: io::net::sys → linux, other.
  const aliases = new Map() // 'io::net::sys' → ['io::net::linux', 'io::net::other']
  const texts = new Map()
  for (const mod of modules.values()) {
    const raw = fs.readFileSync(mod.file, 'utf8')
    const code = stripped(raw)
    texts.set(mod.key, { raw, code })
    for (const [name, fileNames] of mountedFiles(code, raw)) {
      aliases.set(
        mod.segs.concat(name).join('::'),
        fileNames.map((f) => mod.segs.concat(f).join('::'))
      )
    }
  }

  // The modules a resolved absolute path names (longest prefix), after aliases.
  function targetsOf(abs) {
    for (let k = abs.length; k > 0; k--) {
      const key = abs.slice(0, k).join('::')
      if (aliases.has(key)) return aliases.get(key)
      if (modules.has(key)) return [key]
    }
    return [] // the crate root, or not ours
  }

  for (const mod of modules.values()) {
    const { code } = texts.get(mod.key)
    const children = declaredChildren(code)
    mod.privateChildren = new Set()
    for (const [name, isPrivate] of children) {
      if (isPrivate) for (const t of targetsOf(mod.segs.concat(name))) mod.privateChildren.add(t)
    }
    for (const use of namedPaths(code, children)) {
      // Where the path starts: the file's module plus the inline modules around it.
      let here = mod.segs.concat(use.scope)
      let p = use.path
      let abs
      if (p[0] === 'crate') abs = p.slice(1)
      else if (p[0] === 'self' || p[0] === 'super') {
        while (p[0] === 'self' || p[0] === 'super') {
          if (p[0] === 'super') here = here.slice(0, -1)
          p = p.slice(1)
        }
        abs = here.concat(p)
      } else if (children.has(p[0])) abs = mod.segs.concat(p)
      else continue // an extern crate (std::, napi::, tokio::…)
      const line = code.slice(0, use.offset).split('\n').length
      for (const target of targetsOf(abs)) {
        if (target === mod.key) continue
        if (!mod.uses.has(target)) mod.uses.set(target, [])
        mod.uses.get(target).push({ file: mod.file, line, test: mod.test || use.test })
      }
    }
  }
  return { modules, problems }
}

function rel(file) {
  return path.relative(ROOT, file)
}

// Edges that ship: from a non-test module, not from a test block.
function shippedUses(mod) {
  const out = []
  if (mod.test) return out
  for (const [target, sites] of mod.uses) {
    const real = sites.filter((s) => !s.test)
    if (real.length) out.push([target, real])
  }
  return out
}

function parentAndPrivateChild(modules, a, b) {
  return modules.get(a).privateChildren.has(b) || modules.get(b).privateChildren.has(a)
}

// ---------------------------------------------------------------- checks

function layerViolations(modules) {
  const out = []
  for (const mod of modules.values()) {
    const from = LAYERS.indexOf(mod.layer)
    if (from < 0) continue
    for (const [target, sites] of shippedUses(mod)) {
      const to = modules.get(target)
      const rank = LAYERS.indexOf(to.layer)
      if (rank > from) {
        for (const s of sites) {
          out.push(
            `${rel(s.file)}:${s.line}: ${mod.key} uses ${target}: ` +
              `layer ${mod.layer} may not use ${to.layer} (comes after it: ${LAYERS.join(' < ')})`
          )
        }
      }
    }
  }
  return out
}

// Strongly connected components (Tarjan) of the shipped graph, without the
// uses between a parent and a private child; each one larger than a module
// is a cycle.
function cycles(modules) {
  const graph = new Map()
  for (const mod of modules.values()) {
    if (mod.test) continue
    graph.set(
      mod.key,
      shippedUses(mod)
        .filter(([t]) => !modules.get(t).test && !parentAndPrivateChild(modules, mod.key, t))
        .map(([t, sites]) => ({ t, sites }))
    )
  }
  let index = 0
  const idx = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const components = []
  function connect(v) {
    idx.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const { t } of graph.get(v)) {
      if (!idx.has(t)) {
        connect(t)
        low.set(v, Math.min(low.get(v), low.get(t)))
      } else if (onStack.has(t)) low.set(v, Math.min(low.get(v), idx.get(t)))
    }
    if (low.get(v) === idx.get(v)) {
      const comp = []
      let w
      do {
        w = stack.pop()
        onStack.delete(w)
        comp.push(w)
      } while (w !== v)
      if (comp.length > 1) components.push(comp)
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) connect(v)

  // One concrete loop per component, each edge with where it is written.
  return components.map((comp) => {
    const inComp = new Set(comp)
    const start = comp.slice().sort()[0]
    const seen = new Map([[start, null]])
    const queue = [start]
    let closing = null
    while (queue.length && !closing) {
      const v = queue.shift()
      for (const { t, sites } of graph.get(v)) {
        if (!inComp.has(t)) continue
        if (t === start) {
          closing = { from: v, sites }
          break
        }
        if (!seen.has(t)) {
          seen.set(t, { from: v, sites })
          queue.push(t)
        }
      }
    }
    const steps = [closing]
    for (let v = closing.from; v !== start; v = seen.get(v).from) steps.unshift(seen.get(v))
    const lines = steps.map((s, k) => {
      const to = k + 1 < steps.length ? steps[k + 1].from : start
      const site = s.sites[0]
      return `  ${s.from} → ${to}   (${rel(site.file)}:${site.line})`
    })
    return `cycle among ${comp.sort().join(', ')}; one loop:\n${lines.join('\n')}`
  })
}

// ---------------------------------------------------------------- report

function printGraph(modules) {
  for (const layer of LAYERS.concat([null])) {
    const mods = [...modules.values()].filter((m) => (layer ? m.layer === layer : !LAYERS.includes(m.layer)))
    if (!mods.length) continue
    console.log(`\n${layer || '(no layer)'}`)
    for (const mod of mods.sort((a, b) => a.key.localeCompare(b.key))) {
      const uses = [...mod.uses.keys()].sort()
      const shipped = new Set(shippedUses(mod).map(([t]) => t))
      const list = uses.map((t) => (shipped.has(t) ? t : `${t} (test)`))
      const tag = mod.test ? ' [test]' : ''
      console.log(`  ${mod.key}${tag} → ${list.length ? list.join(', ') : '—'}`)
    }
  }
  console.log('')
}

function main() {
  const { modules, problems } = buildGraph()
  if (process.argv.includes('--graph')) printGraph(modules)

  const all = [...modules.values()]
  const edges = all.reduce((n, m) => n + shippedUses(m).length, 0)
  const testOnly = all.filter((m) => m.test).length
  console.log(
    `layers: ${LAYERS.join(' < ')}; ${all.length} modules (${testOnly} test-only), ${edges} uses outside tests`
  )
  for (const layer of LAYERS) {
    const mods = all.filter((m) => m.layer === layer)
    const uses = new Set()
    for (const m of mods) for (const [t] of shippedUses(m)) uses.add(modules.get(t).layer)
    uses.delete(layer)
    const list = LAYERS.filter((l) => uses.has(l))
    console.log(`  ${layer.padEnd(8)} ${String(mods.length).padStart(2)} modules, uses ${list.length ? list.join(', ') : 'nothing else'}`)
  }

  const violations = problems.concat(layerViolations(modules))
  const loops = cycles(modules)
  for (const v of violations) console.error(`layer violation: ${v}`)
  for (const c of loops) console.error(`dependency ${c}`)
  if (violations.length || loops.length) {
    console.error(
      `layers: FAILED (${violations.length} layer violation(s), ${loops.length} cycle(s)); ` +
        'the rule is at the top of scripts/layers.js and in docs/ARCHITECTURE.md'
    )
    process.exit(1)
  }
  console.log('layers: ok (no use of a later layer, no cycle)')
}

main()
