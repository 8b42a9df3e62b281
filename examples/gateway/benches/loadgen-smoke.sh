#!/usr/bin/env bash
# CI smoke test of the load generator: starts the example gateway's embedded
# default (the seed's cookie route over 4 in-process echo replicas) on an
# ephemeral 127.0.0.1 port, runs `loadgen --smoke` against it (16 clients,
# 4 connections, 2,000 requests; fails on any misroute, error or missing
# session), and stops the gateway by PID. Not a benchmark: nothing is timed.
#
#   bash benches/loadgen-smoke.sh        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../../.."

cargo build --release -p tower-sticky-gateway --bins
out=$(mktemp)
gw=""
cleanup() {
  if [ -n "$gw" ]; then kill "$gw" 2>/dev/null || true; wait "$gw" 2>/dev/null || true; fi
  rm -f "$out"
}
trap cleanup EXIT

./target/release/tower-sticky-gateway --listen 127.0.0.1:0 >"$out" 2>&1 &
gw=$!
addr=""
for _ in $(seq 100); do # at most 10 s
  addr=$(grep -o 'listening on http://[0-9.:]*' "$out" | head -1 | sed 's/listening on //' || true)
  [ -n "$addr" ] && break
  kill -0 "$gw" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "loadgen smoke: the gateway did not start:" >&2
  cat "$out" >&2
  exit 1
fi
timeout 120 ./target/release/tower-sticky-loadgen "$addr/get" --smoke
