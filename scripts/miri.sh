#!/usr/bin/env bash
# Runs the unsafe libuv glue's tests (src/io/uv/tests.rs, on the fake libuv of src/io/uv/fake.rs) under
# Miri, once with Stacked Borrows and once with Tree Borrows. Installs the
# nightly toolchain's miri and rust-src components through rustup first.
# What Miri cannot reach: Node's own libuv (the Jest suites drive that).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLCHAIN="${MIRI_TOOLCHAIN:-nightly}"
rustup toolchain install "$TOOLCHAIN" --profile minimal --component miri,rust-src --no-self-update >/dev/null
# A separate target folder: Miri's build must not thrash the regular one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri-build"
cargo "+$TOOLCHAIN" miri setup >/dev/null

echo "miri: uv under Stacked Borrows"
cargo "+$TOOLCHAIN" miri test --quiet --lib uv::
echo "miri: uv under Tree Borrows"
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-tree-borrows" cargo "+$TOOLCHAIN" miri test --quiet --lib uv::
