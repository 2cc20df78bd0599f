'use strict'
// Reads another process's CPU time and wake-ups from /proc, so that an idle
// process can be measured without waking it up to ask.

const fs = require('node:fs')

function tasks(pid) {
  return fs.readdirSync(`/proc/${pid}/task`)
}

/** Nanoseconds every current thread of `pid` has spent on a CPU (schedstat's first field). */
function cpuNs(pid) {
  let total = 0
  for (const tid of tasks(pid)) {
    total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
  }
  return total
}

/** Voluntary context switches of every current thread of `pid`: how often a thread slept and was woken. */
function voluntarySwitches(pid) {
  let total = 0
  for (const tid of tasks(pid)) {
    const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
    total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)[1])
  }
  return total
}

module.exports = { cpuNs, voluntarySwitches }
