#!/usr/bin/env node
'use strict'
// `npm run bench`: handover-native side by side with the original
// handover-lib, against the targets of SPEC §7. Progress goes to stderr;
// the report (Markdown) to stdout. See docs/BENCHMARKS.md.
//
// No packet leaves this machine: every worker runs in a private network
// namespace (unshare -n, loopback only) when we may create one; otherwise
// only our peer runs, pinned to loopback, and the original is skipped.

const fs = require('node:fs')
const os = require('node:os')
const { parseArgs } = require('./lib/args.js')
const { describeMachine, machineMarkdown } = require('./lib/machine.js')
const { markdownTable } = require('./lib/table.js')
const { namespacesAvailable } = require('../test-support/isolated.js')
const { footprint } = require('./suites/footprint.js')
const { require: requireSuite } = require('./suites/require.js')
const { latency } = require('./suites/latency.js')
const { flood } = require('./suites/flood.js')
const { idle } = require('./suites/idle.js')
const { loss } = require('./suites/loss.js')
const { hostnet } = require('./suites/hostnet.js')
const { routing } = require('./suites/routing.js')

const SUITES = { footprint, require: requireSuite, latency, flood, idle, loss, hostnet, routing }
const ORIGINAL_VERSION = require('handover-lib/package.json').version
const NO_NAMESPACES =
  'No private network namespaces (they need root): ours ran pinned to loopback; the original, which always ' +
  'sends through the default route, was skipped.'

function progress(message) {
  process.stderr.write(`[bench] ${message}\n`)
}

/** What every suite gets: the mode, where to run workers, and how to report a skipped implementation. */
function context(quick) {
  const isolated = namespacesAvailable()
  const skipped = { text: 'skipped' }
  if (!isolated) progress(NO_NAMESPACES)
  const impls = isolated ? ['ours', 'original'] : ['ours']
  return {
    quick,
    isolated,
    impls,
    spawn: { isolated },
    progress,
    /** compute() for an implementation that ran, the skip marker for one that did not. */
    measure: (impl, compute) => (impls.includes(impl) ? compute() : skipped),
  }
}

async function runSuites(names, ctx) {
  const sections = []
  let failed = false
  for (const name of names) {
    try {
      const produced = [await SUITES[name](ctx)].flat()
      sections.push(...produced)
      // A suite may report one of its sections as failed and still give the others.
      if (produced.some((section) => section.error)) failed = true
    } catch (error) {
      failed = true
      progress(`${name} failed: ${error.stack}`)
      sections.push({ title: name, error: error.message })
    }
  }
  return { sections, failed }
}

function report({ machine, quick, isolated, seconds, loadBefore, sections }) {
  const parts = [
    `# handover-native vs handover-lib@${ORIGINAL_VERSION}${quick ? ' (--quick: smoke counts, not figures to quote)' : ''}`,
    [
      machineMarkdown(machine),
      `- Load average before the run: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}`,
      `- The run took ${seconds.toFixed(0)} s`,
    ].join('\n'),
  ]
  if (!isolated) parts.push(`**${NO_NAMESPACES}**`)
  for (const section of sections) {
    parts.push(`## ${section.title}`)
    if (section.error) {
      parts.push(`FAILED: ${section.error}`)
      continue
    }
    parts.push(markdownTable(section.rows, { against: section.against }))
    if (section.notes && section.notes.length) parts.push(section.notes.map((n) => `- ${n}`).join('\n'))
  }
  return parts.join('\n\n') + '\n'
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.help) return console.log(args.help)
  const names = args.only || Object.keys(SUITES)
  const unknown = names.filter((n) => !SUITES[n])
  if (unknown.length) throw new Error(`unknown section(s): ${unknown.join(', ')}`)

  const machine = describeMachine()
  const loadBefore = os.loadavg()
  const started = process.hrtime.bigint()
  const ctx = context(args.quick)
  const { sections, failed } = await runSuites(names, ctx)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9

  const run = { machine, quick: args.quick, isolated: ctx.isolated, seconds, loadBefore }
  process.stdout.write(report({ ...run, sections }))
  if (args.json) {
    const results = { ...run, originalVersion: ORIGINAL_VERSION, sections }
    fs.writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n')
    progress(`raw results written to ${args.json}`)
  }
  if (failed) process.exitCode = 1
}

main().catch((error) => {
  progress(error.message)
  process.exitCode = 1
})
