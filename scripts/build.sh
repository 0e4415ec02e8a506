#!/usr/bin/env bash
# The build of shim that ships: static musl, std rebuilt with panics as an immediate abort,
# with the nightly toolchain named in scripts/nightly-toolchain (a fixed date, so the same
# source gives the same bytes). Stable Rust links std's backtrace symbolizer (gimli,
# addr2line, miniz_oxide) into every binary even with panic = "abort"; rebuilding std without
# it, and without unwind tables that nothing reads, takes the binary from about 490 KB to
# about 120 KB. shim never panics on purpose; if it did, it would abort either way.
#
#   scripts/build.sh [--target-dir DIR] [TARGET...]
#   scripts/build.sh --toolchain-only       (install the toolchain and targets, build nothing)
#
# TARGET is x86_64-unknown-linux-musl or aarch64-unknown-linux-musl (default: this
# machine's own). Each binary is DIR/TARGET/release/shim (DIR: target/shipped). Both are
# linked by the rust-lld that comes with the toolchain, against the musl it ships, so no
# cross compiler is needed and the host's C toolchain leaves no trace in the binary.
#
# Every binary must stay within the size that shim promises, 150 000 bytes; one this machine
# can run is also started idle (`shim -- sleep`) and its VmRSS, from /proc/PID/status, must
# stay within 200 KiB. The script fails if either is exceeded.
set -euo pipefail
cd "$(dirname "$0")/.."

max_bytes=150000
max_rss_kib=200

target_dir=target/shipped
targets=()
toolchain_only=
while [ $# -gt 0 ]; do
  case $1 in
    --target-dir) target_dir=$2; shift 2 ;;
    --toolchain-only) toolchain_only=1; shift ;;
    -*) echo "usage: $0 [--target-dir DIR] [TARGET...] | --toolchain-only" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("$(uname -m)-unknown-linux-musl")
[ -z "$toolchain_only" ] || targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

toolchain=$(cat scripts/nightly-toolchain)
target_args=()
for t in "${targets[@]}"; do target_args+=(--target "$t"); done
rustup toolchain install "$toolchain" --profile minimal --component rust-src "${target_args[@]}" >/dev/null 2>&1 ||
  rustup toolchain install "$toolchain" --profile minimal --component rust-src "${target_args[@]}"
[ -z "$toolchain_only" ] || { echo "toolchain: $toolchain"; exit 0; }

# These replace .cargo/config.toml's target flags, so the static, non-PIE layout is repeated
# here. Per target, so that they apply to the targets only, not to build.rs; RUSTFLAGS from
# the caller would override them all, so it goes.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
flags="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Clinker=rust-lld -Clink-arg=-znorelro \
-Crelocation-model=static -Ctarget-feature=+crt-static"
# On x86_64 each segment also starts a page of its own, in the file as in memory: then the
# writable one, data and bss together under 4 KiB, is one page, where it was laid after the
# code at whatever offset the code's length left and spanned two whenever that offset was
# past about 0x200, one page fault more for every start (the C library's `environ` was on
# the second). The padding costs under 8 KB of file. Not on aarch64, whose maximum page size
# is 64 KiB: padding to it would double the binary.
CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$flags -Clink-arg=-zseparate-loadable-segments" \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="$flags" \
  cargo "+$toolchain" build --release --locked -p shim "${target_args[@]}" --target-dir "$target_dir" \
  -Z build-std=std,panic_abort -Z build-std-features=

# The system call number of rt_sigtimedwait, where an idle shim sleeps.
case $(uname -m) in
  x86_64) idle_syscall=128 ;;
  aarch64) idle_syscall=137 ;;
  *) idle_syscall= ;;
esac

# VmRSS in KiB of shim idle with a program running, once it sleeps in its event loop.
idle_rss() {
  local bin=$1 pid syscall=
  "$bin" -- sleep 600 &
  pid=$!
  for _ in $(seq 500); do
    syscall=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null || true)
    [ "$syscall" = "$idle_syscall" ] && break
    sleep 0.01
  done
  if [ "$syscall" != "$idle_syscall" ]; then
    kill -KILL "$pid"
    echo "shim never became idle" >&2
    return 1
  fi
  awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
  # shim forwards the SIGTERM to sleep and exits with it.
  kill -TERM "$pid"
  wait "$pid" || true
}

failed=0
for t in "${targets[@]}"; do
  bin=$target_dir/$t/release/shim
  bytes=$(stat -c %s "$bin")
  line="$bin: $bytes bytes (at most $max_bytes)"
  [ "$bytes" -le "$max_bytes" ] || failed=1
  if [ "${t%%-*}" = "$(uname -m)" ] && [ -n "$idle_syscall" ]; then
    rss=$(idle_rss "$bin")
    line+=", VmRSS idle $rss KiB (at most $max_rss_kib)"
    [ "$rss" -le "$max_rss_kib" ] || failed=1
  fi
  echo "$line"
done
[ "$failed" = 0 ] || { echo "over budget" >&2; exit 1; }
