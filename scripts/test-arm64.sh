#!/usr/bin/env bash
# The aarch64 build, tested on an x86_64 machine under qemu-user: a few direct checks as PID 1
# of a PID namespace, then the integration suite against it (as root).
#
#   scripts/test-arm64.sh [BINARY]
#
# BINARY defaults to scripts/build.sh's aarch64 one (built if missing). No binfmt is needed:
# qemu runs shim, and shim's children run natively, since qemu's execve of an x86_64 program
# is a native exec. As PID 1, qemu is the process the kernel sees as PID 1, with shim inside.
#
# qemu must let shim become a child subreaper. Debian 12's qemu-user-static (7.2) answers
# PR_SET_CHILD_SUBREAPER with EINVAL, so the half of the suite that runs shim as a subreaper
# could not run; qemu-user 10 from Debian's bookworm-backports passes it to the kernel. The
# first qemu found that can is used: $QEMU_AARCH64, then one fetched before into
# target/qemu, then qemu-aarch64 or qemu-aarch64-static on PATH; failing those, qemu-user is
# fetched from backports with apt-get download and unpacked into target/qemu (the machine's
# package sources and installed packages are left as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

bin=${1:-}
if [ -z "$bin" ]; then
  scripts/build.sh aarch64-unknown-linux-musl
  bin=target/shipped/aarch64-unknown-linux-musl/release/shim
fi
bin=$(realpath "$bin")
file "$bin" | grep -q 'ARM aarch64.*statically linked' || { echo "$bin: not a static aarch64 binary" >&2; exit 1; }

# Whether qemu $1 runs shim with a subreaper.
usable() {
  local err
  [ -x "$1" ] || return 1
  err=$("$1" "$bin" -- true 2>&1) && ! grep -q 'subreaper' <<<"$err"
}

fetch_qemu() {
  local suite apt
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")-backports
  apt=target/qemu-apt
  rm -rf "$apt" target/qemu
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" target/qemu
  echo "deb http://deb.debian.org/debian $suite main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$PWD/$apt/sources.list" -o "Dir::Etc::SourceParts=$PWD/$apt/parts"
    -o "Dir::State::Lists=$PWD/$apt/lists" -o "Dir::Cache=$PWD/$apt/cache" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" update -qq
  (cd "$apt" && apt-get "${opts[@]}" download -qq "qemu-user/$suite")
  dpkg-deb -x "$apt"/qemu-user_*.deb target/qemu
  rm -rf "$apt"
}

qemu=
for candidate in "${QEMU_AARCH64:-}" target/qemu/usr/bin/qemu-aarch64 "$(command -v qemu-aarch64 || true)" \
  "$(command -v qemu-aarch64-static || true)"; do
  if [ -n "$candidate" ] && usable "$candidate"; then qemu=$candidate; break; fi
done
if [ -z "$qemu" ]; then
  fetch_qemu
  qemu=target/qemu/usr/bin/qemu-aarch64
  usable "$qemu" || { echo "no qemu-aarch64 here lets shim be a subreaper" >&2; exit 1; }
fi
qemu=$(realpath "$qemu")
echo "qemu: $("$qemu" --version | head -n 1)"
echo "shim: $bin, $(stat -c %s "$bin") bytes, $("$qemu" "$bin" --version)"

section() { printf '\n== %s\n' "$*"; }

section "direct checks, as PID 1 of a PID namespace"
as_pid1() { unshare --pid --fork --mount-proc --kill-child "$qemu" "$bin" "$@"; }
code_of() {
  local code=0
  "$@" >/dev/null 2>&1 || code=$?
  echo "$code"
}
expect() {
  if [ "$3" = "$2" ]; then
    echo "ok: $1"
  else
    printf 'FAILED: %s\n  want: %s\n  got:  %s\n' "$1" "$2" "$3" >&2
    exit 1
  fi
}
expect "the program's exit status is shim's" 3 "$(code_of as_pid1 -- sh -c 'exit 3')"
expect "shim is PID 1, the program's parent" 1 "$(as_pid1 -- sh -c 'cut -d" " -f4 /proc/$$/stat')"
expect "a SIGTERM to PID 1 reaches the program" got-term \
  "$(as_pid1 -- sh -c 'trap "echo got-term; exit 0" TERM; kill -TERM 1; while :; do sleep 0.05; done' 2>/dev/null)"
expect "an orphan is reaped" 0 \
  "$(as_pid1 -- sh -c 'sh -c "true & exit 0"; sleep 0.5; grep -l "^State:.*Z" /proc/[0-9]*/status | wc -l')"
expect "the grace period ends in SIGKILL" 137 \
  "$(code_of as_pid1 -g 0.3s -- sh -c 'trap "" TERM; kill -TERM 1; sleep 5')"

section "the integration suite against the aarch64 binary"
# A wrapper that the suite runs as shim: exec keeps the pid, -0 the name it was called by
# (shim as tini, docker-init or dumb-init goes by that name).
wrapper_dir=$PWD/target/arm64-under-qemu
mkdir -p "$wrapper_dir"
printf '#!/bin/sh\nexec %s -0 "$0" %s "$@"\n' "$qemu" "$bin" >"$wrapper_dir/shim"
chmod +x "$wrapper_dir/shim"

# What cannot run under qemu-user, each for a reason of the emulator's, not of shim's:
skip=(
  # Docker and Podman would need binfmt to run an aarch64 binary inside their images.
  docker_end_to_end engines_end_to_end rolling_update_behind_haproxy
  # qemu keeps some host real-time signals for itself and maps the guest's onto others, so
  # what a native child inherits as ignored is qemu's doing.
  the_program_starts_with_nothing_blocked_and_sigpipe_at_default
  a_disposition_shim_inherited_as_ignored_is_passed_on
  # qemu needs a thread of its own to start, which RLIMIT_NPROC=1 refuses.
  fork_failing_for_the_process_limit_is_125_with_what_to_do
  # qemu and the wrapper need file descriptors of their own, more than RLIMIT_NOFILE=4.
  starting_the_program_needs_no_file_descriptor health_out_of_file_descriptors_is_125_with_what_to_do
  # valgrind would run the wrapper, not the aarch64 binary (qemu is the fork path's test here).
  where_vfork_is_a_fork_the_report_comes_through_the_pipe
  # Its peak-RSS bound would measure qemu's memory (about 11 MB), not shim's.
  a_program_that_forks_50000_processes_leaves_no_zombie
  # qemu itself dies of a SIGABRT sent to it from outside.
  fault_signals_sent_to_shim_are_not_forwarded
  # The readiness it waits for, every signal blocked in /proc/PID/status, is qemu's host
  # mask, which qemu fills for moments of its own before shim has blocked anything; a SIGTERM
  # sent in those first instants was lost inside qemu in about 1 run in 30 (never natively,
  # where the suite runs it against the x86_64 build).
  sigterm_right_after_start_is_never_lost
)
skip_args=()
for t in "${skip[@]}"; do skip_args+=(--skip "$t"); done
SHIM_TEST_REQUIRE_PID1=1 SHIM_UNDER_TEST="$wrapper_dir/shim" cargo test --no-fail-fast --tests -p shim -- --exact "${skip_args[@]}"
