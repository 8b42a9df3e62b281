#!/usr/bin/env bash
# The seed's walkthroughs (../shared/seed/session-persistence.md), verbatim,
# against the gateway on 127.0.0.1:8888 with the seed's 10 s timeout:
#   1. cookie: the gateway with no flags (the embedded default route);
#   2. header: the gateway with tests/data/header-route.yaml.
# Builds the example, starts it, runs the seed's exact lines with curl, checks
# five identical pods, then several pods after `sleep 10` (cookie) or without
# the header, and stops what it started by PID. Takes about 15 s.
set -euo pipefail
cd "$(dirname "$0")/../../.."

cargo build --quiet -p tower-sticky-gateway --bins
GATEWAY=target/debug/tower-sticky-gateway
LOG=$(mktemp -d)
GW_PID=""
cleanup() {
    if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

start_gateway() {
    "$GATEWAY" "$@" >"$LOG/out" 2>"$LOG/err" &
    GW_PID=$!
    for _ in $(seq 100); do
        grep -q '^listening on ' "$LOG/out" 2>/dev/null && return 0
        kill -0 "$GW_PID" 2>/dev/null || { cat "$LOG/err" >&2; return 1; }
        sleep 0.1
    done
    echo "gateway did not start" >&2
    return 1
}

stop_gateway() {
    kill "$GW_PID"
    wait "$GW_PID" || true
    GW_PID=""
}

check_pods() { # name, want ("one" | "several"), output
    local lines distinct
    lines=$(printf '%s\n' "$3" | grep -c '^ "pod": "backend-[a-z0-9]\{10\}-[a-z0-9]\{5\}"$' || true)
    distinct=$(printf '%s\n' "$3" | sort -u | wc -l)
    printf '%s\n' "$3"
    if [ "$lines" -ne 5 ]; then echo "FAIL $1: expected 5 pod lines" >&2; exit 1; fi
    if [ "$2" = one ] && [ "$distinct" -ne 1 ]; then echo "FAIL $1: expected one pod" >&2; exit 1; fi
    if [ "$2" = several ] && [ "$distinct" -lt 2 ]; then echo "FAIL $1: expected several pods" >&2; exit 1; fi
    echo "ok   $1"
}

echo "== cookie walkthrough (gateway with no flags)"
start_gateway
# --- the seed's lines, verbatim ---
COOKIE=$(curl --verbose http://localhost:8888/get 2>&1 | grep "set-cookie" | awk '{print $3}')
out=$(for i in `seq 5`; do
    curl -H "Cookie: $COOKIE" http://localhost:8888/get 2>/dev/null | grep pod
done)
check_pods "cookie: five requests, one pod" one "$out"
out=$(sleep 10 && for i in `seq 5`; do
    curl -H "Cookie: $COOKIE" -H "Host: www.example.com" http://localhost:8888/get 2>/dev/null | grep pod
done)
check_pods "cookie: after expiry, several pods" several "$out"
stop_gateway

echo "== header walkthrough (--route tests/data/header-route.yaml)"
start_gateway --route tests/data/header-route.yaml
# --- the seed's lines, verbatim ---
HEADER=$(curl --verbose http://localhost:8888/get 2>&1 | grep "session-a" | awk '{print $3}')
out=$(for i in `seq 5`; do
    curl -H "Session-A: $HEADER" http://localhost:8888/get 2>/dev/null | grep pod
done)
check_pods "header: five requests, one pod" one "$out"
out=$(for i in `seq 5`; do
    curl http://localhost:8888/get 2>/dev/null | grep pod
done)
check_pods "header: without it, several pods" several "$out"
stop_gateway
echo "walkthrough: all passed"
