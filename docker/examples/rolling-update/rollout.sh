#!/bin/sh
# Replace every replica of a Compose service without failing a request: start as many new
# replicas as there are old ones, wait until HAProxy routes to all of them, stop the old ones
# together (each drains: see README.md), remove them, and set the scale back.
#
#   rollout.sh [SERVICE]     SERVICE defaults to app; run it beside compose.yaml
#   STATS                    HAProxy's stats page, default http://127.0.0.1:8404/stats;csv
#   STOP_TIMEOUT             docker stop -t, default 30 (compose.yaml's stop_grace_period)
set -eu
service=${1:-app}
stats=${STATS:-'http://127.0.0.1:8404/stats;csv'}
stop_timeout=${STOP_TIMEOUT:-30}

old=$(docker compose ps -q "$service")
count=$(printf '%s\n' "$old" | grep -c . || true)
if [ "$count" -eq 0 ]; then
  echo "rollout: no running replica of $service" >&2
  exit 1
fi
want=$((count * 2))

# 1. Scale up: the old replicas keep serving; new ones, from the current image, start beside
#    them. --no-recreate leaves the old containers as they are.
docker compose up -d --no-deps --no-recreate --scale "$service=$want" "$service"

# 2. Wait until HAProxy's checks pass on old and new alike (field 18 of the stats is the
#    status). shim's health port answers 200 only once the program accepts connections.
serving() { curl -fsS "$stats" | awk -F, '$1 == "app" && $18 == "UP"' | wc -l; }
tries=0
until [ "$(serving)" -ge "$want" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "rollout: the new replicas never passed HAProxy's checks; the old ones still serve" >&2
    exit 1
  fi
  sleep 1
done

# 3. Stop the old replicas together, as Compose does. Each one's shim answers 503 at once,
#    HAProxy stops routing to it within a second, the program serves on for SHIM_STOP_DELAY,
#    then gets SIGTERM and drains. docker stop returns when every one has exited.
# shellcheck disable=SC2086 # one container id per word
docker stop -t "$stop_timeout" $old
# shellcheck disable=SC2086
docker rm $old

# 4. Scale back: only the new replicas are left, so this changes nothing but the count
#    Compose keeps for the service.
docker compose up -d --no-deps --no-recreate --scale "$service=$count" "$service"
echo "rollout: $count replica(s) of $service replaced"
