'use strict'
// The loss rows need nftables inside a private namespace. When `nft` is
// missing, install it once (as root, through apt-get), or say why not.

const { spawnSync } = require('node:child_process')

const INSTALL_TIMEOUT_MS = 180_000

function hasNft() {
  return spawnSync('nft', ['--version'], { stdio: 'ignore' }).status === 0
}

function aptGet(args) {
  return spawnSync('apt-get', args, {
    stdio: 'ignore',
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  }).status === 0
}

/** null when nft is ready; otherwise why the loss rows are skipped. */
function ensureNft(progress) {
  if (hasNft()) return null
  if (process.getuid() !== 0) return 'nft is missing and installing it needs root'
  if (spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    return 'nft is missing and there is no apt-get to install nftables'
  }
  progress('loss: nft is missing; installing nftables with apt-get')
  const install = () => aptGet(['install', '-y', '-q', 'nftables'])
  if (!install() && aptGet(['update', '-q'])) install() // a fresh image may have no package lists yet
  return hasNft() ? null : 'nft is missing and `apt-get install -y nftables` failed'
}

module.exports = { ensureNft }
