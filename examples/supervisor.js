'use strict'
// A simulated balena supervisor applying the hand-over update strategy:
// start the new instance next to the old one, wait for the old one to
// create its handover-complete file (or for the handover timeout), then
// kill the old one: SIGTERM, and SIGKILL if it lingers.

const { fork } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')

const SERVICE = path.join(__dirname, 'service.js')
/** The real supervisor also checks for the file periodically. */
const POLL_MS = 20

class Supervisor {
  constructor({ timeline, handoverTimeoutMs, killGraceMs }) {
    Object.assign(this, { timeline, handoverTimeoutMs, killGraceMs })
    this.instances = new Set()
  }

  /** Starts an instance of the service; `onEvent` hears what it reports. */
  start(config, onEvent) {
    const child = fork(SERVICE, [JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    const instance = { name: config.version, config, child, killedBy: null, exit: null }
    instance.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    instance.exited.then(({ code, signal }) => {
      instance.exit = { code, signal }
      this.instances.delete(instance)
      this.timeline.log('supervisor', `${instance.name} exited (${signal ? `killed by ${signal}` : `code ${code}`})`)
    })
    // Anything the instance prints (library warnings, crashes) shows in the timeline.
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => this.timeline.log(instance.name, `| ${line}`))
    }
    child.on('message', (message) => onEvent(instance, message))
    this.instances.add(instance)
    this.timeline.log('supervisor', `started ${instance.name} (pid ${child.pid})`)
    return instance
  }

  /**
   * The update: start `next`, then kill `old` once it wrote its
   * handover-complete file or the handover timeout ran out. Resolves with
   * the new instance and a promise of how the handover ended.
   */
  update(old, nextConfig, onEvent) {
    const next = this.start(nextConfig, onEvent)
    const ended = this.waitForCompleteFile(old).then((found) => {
      const reason = found ? 'handover-complete file appeared' : `handover timeout (${this.handoverTimeoutMs} ms)`
      old.killedBy = found ? 'complete-file' : 'timeout'
      return this.kill(old, reason).then(() => old.killedBy)
    })
    return { next, ended }
  }

  /** Resolves true once the file exists, false at the handover timeout. */
  waitForCompleteFile(instance) {
    const file = instance.config.completePath
    const deadline = Date.now() + this.handoverTimeoutMs
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        const found = fs.existsSync(file)
        if (found || Date.now() >= deadline) {
          clearInterval(timer)
          resolve(found)
        }
      }, POLL_MS)
    })
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once it exited. */
  async kill(instance, reason) {
    this.timeline.log('supervisor', `${reason}: stopping ${instance.name} with SIGTERM`)
    instance.child.kill('SIGTERM')
    const grace = setTimeout(() => {
      this.timeline.log('supervisor', `${instance.name} still running after ${this.killGraceMs} ms: SIGKILL`)
      instance.child.kill('SIGKILL')
    }, this.killGraceMs)
    const exit = await instance.exited
    clearTimeout(grace)
    return exit
  }

  /** Last resort when the demo itself fails: leave no process behind. */
  killAll() {
    for (const instance of this.instances) instance.child.kill('SIGKILL')
  }
}

module.exports = { Supervisor }
