'use strict'
// Loads the native addon. Tried in order: an explicit path
// (NAPI_RS_NATIVE_LIBRARY_PATH), a build in this folder (a git checkout),
// then the prebuilt per-platform package. glibc and musl builds are told
// apart by trying to load them, which costs nothing when the first one
// fits (the generic napi-rs loader reads /usr/bin/ldd on every require).

const ABIS = {
  'linux-x64': ['linux-x64-gnu', 'linux-x64-musl'],
  'linux-arm64': ['linux-arm64-gnu', 'linux-arm64-musl'],
  'linux-arm': ['linux-arm-gnueabihf'],
}

function candidates() {
  if (process.env.NAPI_RS_NATIVE_LIBRARY_PATH) return [process.env.NAPI_RS_NATIVE_LIBRARY_PATH]
  const abis = ABIS[`${process.platform}-${process.arch}`] || []
  return abis.flatMap((abi) => [`./handover.${abi}.node`, `handover-native-${abi}`])
}

function load() {
  const failures = []
  for (const candidate of candidates()) {
    try {
      return require(candidate)
    } catch (error) {
      failures.push(`${candidate}: ${error.message.split('\n')[0]}`)
    }
  }
  throw new Error(
    `handover-native has no native binding for ${process.platform}-${process.arch}.\n` +
      `Tried:\n  ${failures.join('\n  ') || '(nothing: unsupported platform)'}\n` +
      'In a git checkout, build it with `npm run build` (needs Rust).',
  )
}

module.exports = load()
