#!/usr/bin/env bash
# Build a much smaller shim (about 125 KB instead of about 470 KB) with a nightly toolchain:
# std is rebuilt with panics as an immediate abort, which drops the backtrace symbolizer
# (gimli, addr2line, miniz_oxide, libunwind) that stable Rust links into every binary even
# with panic = "abort". shim never panics on purpose; if it did, it would abort either way.
#
#   scripts/build-tiny.sh        -> target/tiny/x86_64-unknown-linux-musl/release/shim
#
# Test the result like any other build: SHIM_UNDER_TEST=<that path> cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install nightly --profile minimal --component rust-src >/dev/null
rustup target add x86_64-unknown-linux-musl --toolchain nightly >/dev/null
RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Crelocation-model=static -Ctarget-feature=+crt-static" \
  cargo +nightly build --release --target x86_64-unknown-linux-musl -p shim --target-dir target/tiny \
  -Z build-std=std,panic_abort
bin=target/tiny/x86_64-unknown-linux-musl/release/shim
echo "$bin: $(stat -c %s "$bin") bytes"
