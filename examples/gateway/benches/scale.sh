#!/usr/bin/env bash
# Scale checks for the example gateway (issue 4, "Scale"):
#  1. resident memory after 1,000 distinct sessions and after 1,000,000
#     (sessions are stateless signed tokens, so memory should stay flat);
#  2. 1,000 backends against 4: throughput and misroutes with 2,000 sessions
#     spread over them, and, when HAProxy is installed, HAProxy (nbthread 1,
#     cookie insert) over the same backends with the same load, so that what
#     1,000 backends cost this setup (one NGINX serving 1,000 ports, ~1,000
#     upstream connections) is told apart from what they cost the gateway.
#
#   bash benches/scale.sh                 (from the repository root)
#   SESSIONS=200000 bash benches/scale.sh (a shorter memory run)
#
# Backends are NGINX (one process, 1 worker) answering with a fixed JSON body
# and an `x-pod` header; the gateway runs with --threads 1 and RUST_LOG=warn;
# load comes from examples/loadgen. Everything listens on 127.0.0.1, every
# process started is stopped by PID, every loop is bounded.
set -euo pipefail

SESSIONS=${SESSIONS:-1000000}
BASE_PORT=${BASE_PORT:-21000}
OUT=${OUT:-target/scale}

SCRIPT=scale.sh
TOOLS="nginx python3 cargo"
if [ "$SESSIONS" -lt 1000 ] || [ "$SESSIONS" -gt 5000000 ]; then
  echo "scale.sh: SESSIONS must be 1000..5000000" >&2
  exit 2
fi
source "$(dirname "$0")/common.sh"


cat >"$WORK/route.yaml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: scale
spec:
  rules:
    - backendRefs:
        - name: pods
          port: 80
      sessionPersistence:
        sessionName: Session-A
        absoluteTimeout: 1h
        idleTimeout: 30m
EOF

# Starts the gateway over $1 backends on port $2; prints its PID.
start_haproxy() {
  haproxy_config "$WORK/haproxy-$1.cfg" 1 8000 "$2" "$BASE_PORT" "$1" 30m 1h
  haproxy -f "$WORK/haproxy-$1.cfg" -db >"$WORK/haproxy-$1.log" 2>&1 &
  echo $!
}

start_gateway() {
  local n=$1 port=$2 list
  list=$(for i in $(seq 0 $((n - 1))); do printf '127.0.0.1:%s,' $((BASE_PORT + i)); done)
  RUST_LOG=warn "$GATEWAY" --route "$WORK/route.yaml" --backend "pods=${list%,}" \
    --listen "127.0.0.1:$port" --threads 1 >"$WORK/gateway-$n.log" 2>&1 &
  echo $!
}

load() { # url, then loadgen flags; prints the JSON report
  timeout 600 "$LOADGEN" "$@" --json
}

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

report="$OUT/summary.md"
nginx_backends "$WORK/backends" "$BASE_PORT" 1000
{
  echo "## Memory against session count (gateway --threads 1, 4 backends)"
  echo
  gw_port=$((BASE_PORT + 1500))
  gw=$(start_gateway 4 "$gw_port")
  PIDS+=("$gw")
  wait_port "$gw_port"
  url="http://127.0.0.1:$gw_port/get"
  start_rss=$(rss_kib "$gw")
  a=$(load "$url" --clients 1000 --connections 16 --requests 20000 --duration 120)
  rss_1k=$(rss_kib "$gw")
  b=$(load "$url" --fresh --clients 1000 --connections 16 --requests "$SESSIONS" --duration 600)
  rss_many=$(rss_kib "$gw")
  created_a=$(echo "$a" | field sessions_created)
  created_b=$(echo "$b" | field sessions_created)
  echo "| after | sessions created | VmRSS KiB |"
  echo "|---|---:|---:|"
  echo "| start-up | 0 | $start_rss |"
  echo "| phase 1 (1,000 clients, 20,000 requests) | $created_a | $rss_1k |"
  echo "| phase 2 (a new session per request) | +$created_b | $rss_many |"
  echo
  python3 -c "print(f'RSS after {int($created_a)+int($created_b):,} sessions / after {int($created_a):,}: {$rss_many/$rss_1k:.3f}')"
  echo
  kill "$gw"; wait "$gw" 2>/dev/null || true

  echo "## 1,000 backends against 4 (gateway --threads 1, 2,000 sessions, 10 s)"
  echo
  echo "| proxy | backends | req/s | p99 ms | misroutes | errors | sessions | distinct pods used | VmRSS KiB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  proxies=(gateway)
  command -v haproxy >/dev/null 2>&1 && proxies+=(haproxy)
  for proxy in "${proxies[@]}"; do
  for n in 4 1000; do
    gw=$("start_$proxy" "$n" "$gw_port")
    PIDS+=("$gw")
    wait_port "$gw_port"
    r=$(load "$url" --clients 2000 --connections 16 --duration 10)
    rss=$(rss_kib "$gw")
    echo "$r" | python3 -c "
import json, sys
r = json.load(sys.stdin)
print(f\"| $proxy | $n | {r['rps']:.0f} | {r['p99_ms']:.3f} | {r['misroutes']} | {r['non_2xx'] + r['transport_errors']} | {r['sessions_created']} | {r.get('distinct_pods', 'n/a')} | $rss |\")"
    kill "$gw"; wait "$gw" 2>/dev/null || true
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$gw_port") 2>/dev/null || break; sleep 0.1; done
  done
  done
} | tee "$report"
