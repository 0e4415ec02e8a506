#!/usr/bin/env bash
# Soak test: run shim as PID 1 of a fresh PID namespace for MINUTES (default 15) under random
# signals and process churn (spawns, orphans, exits), sampling shim's memory and fd count;
# then check they did not grow and that no zombie or stray process is left.
#
#   scripts/soak.sh [MINUTES]        (as root: it makes a PID namespace)
#
# Exit 0 and a summary line when all holds; 1 and what failed otherwise.
set -euo pipefail
minutes=${1:-15}
cd "$(dirname "$0")/.."

# The binary that ships.
scripts/build.sh >/dev/null
cargo build -q -p shim-testkit --target-dir target/testkit
shim=$PWD/target/shipped/$(uname -m)-unknown-linux-musl/release/shim
probe=$PWD/target/testkit/debug/probe

# The workload: a shell that ignores the signals it is sent and, in a loop, leaves orphans
# behind (short sleeps whose parent exits at once) and runs batches of forks. SIGTERM ends it.
workload='
trap "" HUP USR1 USR2 WINCH 37 40
trap "exit 0" TERM
while :; do
  sh -c "sleep 0.05 & sleep 0.01 & exit 0"
  "$PROBE" churn 20 & churner=$!
  sleep 0.05
  kill -KILL $churner 2>/dev/null
  wait $churner 2>/dev/null
done'

log=$(mktemp)
PROBE=$probe unshare --pid --fork --mount-proc --kill-child "$shim" -g 5s -- sh -c "$workload" >"$log" 2>&1 &
outer=$!
trap 'kill -KILL $outer 2>/dev/null || true; rm -f "$log"' EXIT
pid=
for _ in $(seq 100); do
  pid=$(awk '{print $1}' /proc/$outer/task/$outer/children 2>/dev/null || true)
  [ -n "$pid" ] && break
  sleep 0.05
done
[ -n "$pid" ] || { echo "soak: shim never started"; exit 1; }

field() { awk -v f="$1:" '$1 == f { print $2 }' /proc/$pid/status; }
fds() { ls /proc/$pid/fd | wc -l; }
zombies() { awk -v p="$pid" '{ n = split($0, a, ") "); split(a[n], f, " "); if (f[1] == "Z" && f[2] == p) z++ } END { print z + 0 }' /proc/[0-9]*/stat 2>/dev/null; }

end=$(( $(date +%s) + minutes * 60 ))
sent=0
sleep 5
rss_first=$(field VmRSS); fds_first=$(fds)
echo "soak: start  rss=${rss_first} kB fds=${fds_first}"
signals=(HUP USR1 USR2 WINCH CONT 37 40)
while [ "$(date +%s)" -lt "$end" ]; do
  # A burst of random signals, then a pause of random length.
  for _ in $(seq $((RANDOM % 200 + 1))); do
    kill -s "${signals[RANDOM % ${#signals[@]}]}" "$pid" 2>/dev/null || { echo "soak: FAIL shim is gone"; cat "$log"; exit 1; }
    sent=$((sent + 1))
  done
  sleep 0.$((RANDOM % 5))
  [ $((RANDOM % 60)) -eq 0 ] && echo "soak: ... rss=$(field VmRSS) kB hwm=$(field VmHWM) kB fds=$(fds) zombies=$(zombies)"
done
rss_last=$(field VmRSS); hwm=$(field VmHWM); fds_last=$(fds)
echo "soak: end    rss=${rss_last} kB hwm=${hwm} kB fds=${fds_last} ($sent signals sent)"

failed=0
if [ "$rss_last" -gt $((rss_first + 64)) ]; then echo "soak: FAIL rss grew ${rss_first} -> ${rss_last} kB"; failed=1; fi
if [ "$fds_last" -ne "$fds_first" ]; then echo "soak: FAIL fds ${fds_first} -> ${fds_last}"; failed=1; fi

# Stop: SIGTERM reaches the workload, which exits; every orphan must be reaped by then, and
# shim must exit 0 (the workload's status) with nothing left.
kill -TERM "$pid"
for _ in $(seq 200); do kill -0 "$outer" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$outer" 2>/dev/null; then echo "soak: FAIL shim did not exit"; failed=1; fi
code=0; wait "$outer" || code=$?
echo "soak: shim exited with $code"
if [ "$code" -ne 0 ]; then echo "soak: FAIL exit code $code, want 0"; cat "$log"; failed=1; fi
if [ "$failed" -eq 0 ]; then
  echo "soak: OK: $minutes min, $sent signals, rss ${rss_first} -> ${rss_last} kB (peak ${hwm}), fds ${fds_first} -> ${fds_last}"
fi
exit "$failed"
