#!/usr/bin/env bash
# Side-by-side race: the example gateway against HAProxy and NGINX doing the
# same sticky routing, on the same four backends, under the same load.
#
#   bash benches/race.sh                  (from the repository root)
#   ROUNDS=6 DURATION=10 bash benches/race.sh
#
# Everything listens on 127.0.0.1. Backends: one NGINX process (1 worker)
# serving four ports, each a fixed JSON body naming its pod plus an `x-pod`
# header: cheap, and identical for every contestant. Load: examples/loadgen
# (CLIENTS sessions, each with its own cookie jar, rotated over CONNS
# connections, so connection reuse cannot fake stickiness; it counts
# misroutes). Contestants, each measured over DURATION seconds after a 1 s
# warm-up:
#   direct      loadgen straight to one backend (the ceiling; no stickiness)
#   haproxy-N   HAProxy, nbthread N, `cookie Session-A insert indirect nocache
#               maxidle 30s maxlife 60s`
#   nginx-N     NGINX, worker_processes N, `hash $sticky consistent` where
#               $sticky is the Session-A cookie, or a fresh $request_id that is
#               also set as the cookie (NGINX has no cookie insertion of its
#               own, and `$cookie_Session-A` would read as `$cookie_Session`
#               followed by `-A`, so a map over $http_cookie extracts it)
#   gateway-N   examples/gateway --threads N, the same cookie with
#               absoluteTimeout 60s and idleTimeout 30s, RUST_LOG=warn (no
#               per-request access log, like the peers here)
# Each round runs `direct`, then the pairs (haproxy-N, gateway-N) and
# (nginx-N, gateway-N) for N in 1 2, back to back, the order within a pair
# alternating between rounds. Ratios are taken per pair and the median over
# the rounds is reported. Proxy CPU is utime+stime from /proc/PID/stat of the
# proxy's processes over the measured window.
#
# Results go to $OUT (default target/race): runs.tsv (every run) and
# summary.md (the medians table). Every process started is stopped by PID;
# every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-6}
CLIENTS=${CLIENTS:-64}
CONNS=${CONNS:-16}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
THREADS=${THREADS:-"1 2"}
OUT=${OUT:-target/race}
BASE_PORT=${BASE_PORT:-19100}

missing=()
for tool in haproxy nginx python3 cargo; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "race.sh: missing tools: ${missing[*]}" >&2
  echo "  install them with: apt-get install haproxy nginx python3 (and rustup for cargo)" >&2
  exit 2
fi
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 50 ] || [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 120 ]; then
  echo "race.sh: ROUNDS must be 1..50 and DURATION 1..120 seconds" >&2
  exit 2
fi

cargo build --release -p tower-sticky-gateway --bins >&2
GATEWAY=target/release/tower-sticky-gateway
LOADGEN=target/release/tower-sticky-loadgen

mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

BACKEND_PORTS=()
for i in 0 1 2 3; do BACKEND_PORTS+=($((BASE_PORT + i))); done
PROXY_PORT=$((BASE_PORT + 10))
CLK_TCK=$(getconf CLK_TCK)

# Waits (at most 10 s) until 127.0.0.1:$1 accepts connections.
wait_port() {
  local port=$1
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "race.sh: nothing listens on 127.0.0.1:$port after 10 s" >&2
  return 1
}

# Waits (at most 10 s) until nothing listens on 127.0.0.1:$1 any more.
wait_port_free() {
  local port=$1
  for _ in $(seq 100); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "race.sh: 127.0.0.1:$port is still busy after 10 s" >&2
  return 1
}

# Stops one PID we started, and forgets it.
stop() {
  local pid=$1 keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# CPU ticks (utime+stime) of a process and its direct children (NGINX
# workers, HAProxy has none here).
cpu_ticks() {
  local pid=$1 total=0 p
  for p in $pid $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
    if [ -r "/proc/$p/stat" ]; then
      # Fields after the command name, which is in parentheses.
      total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    fi
  done
  echo "$total"
}

# --- backends: one NGINX, four ports -------------------------------------
mkdir -p "$WORK/backends"
{
  echo "worker_processes 1;"
  echo "pid $WORK/backends/nginx.pid;"
  echo "error_log $WORK/backends/error.log warn;"
  echo "daemon off;"
  echo "events { worker_connections 4096; }"
  echo "http {"
  echo "  access_log off;"
  echo "  keepalive_requests 1000000;"
  echo "  client_body_temp_path $WORK/backends; proxy_temp_path $WORK/backends;"
  echo "  fastcgi_temp_path $WORK/backends; uwsgi_temp_path $WORK/backends; scgi_temp_path $WORK/backends;"
  for i in 0 1 2 3; do
    echo "  server {"
    echo "    listen 127.0.0.1:${BACKEND_PORTS[$i]};"
    echo "    default_type application/json;"
    echo "    location / {"
    echo "      add_header x-pod pod-$i;"
    echo "      return 200 '{\n \"path\": \"\$uri\",\n \"pod\": \"pod-$i\"\n}\n';"
    echo "    }"
    echo "  }"
  done
  echo "}"
} >"$WORK/backends/nginx.conf"
nginx -e "$WORK/backends/error.log" -c "$WORK/backends/nginx.conf" -p "$WORK/backends" &
PIDS+=($!)
for p in "${BACKEND_PORTS[@]}"; do wait_port "$p"; done

# --- contestant configurations -------------------------------------------
write_haproxy() { # threads
  local f="$WORK/haproxy-$1.cfg"
  {
    echo "global"
    echo "  nbthread $1"
    echo "  maxconn 4000"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 5s"
    echo "  timeout client 30s"
    echo "  timeout server 30s"
    echo "frontend fe"
    echo "  bind 127.0.0.1:$PROXY_PORT"
    echo "  default_backend pods"
    echo "backend pods"
    echo "  balance roundrobin"
    echo "  cookie Session-A insert indirect nocache maxidle 30s maxlife 60s"
    for i in 0 1 2 3; do
      echo "  server pod-$i 127.0.0.1:${BACKEND_PORTS[$i]} cookie pod-$i"
    done
  } >"$f"
  echo "$f"
}

write_nginx() { # workers
  local d="$WORK/nginx-$1"
  mkdir -p "$d"
  {
    echo "worker_processes $1;"
    echo "pid $d/nginx.pid;"
    echo "error_log $d/error.log warn;"
    echo "daemon off;"
    echo "events { worker_connections 4096; }"
    echo "http {"
    echo "  access_log off;"
    echo "  keepalive_requests 1000000;"
    echo "  client_body_temp_path $d; proxy_temp_path $d;"
    echo "  fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;"
    # The cookie's value, extracted from the raw header: `$cookie_Session-A`
    # would parse as `$cookie_Session` followed by the text `-A`.
    echo "  map \$http_cookie \$sticky_cookie {"
    echo "    \"~(?:^|;)\\s*Session-A=(?<sa>[^;\\s]+)\" \$sa;"
    echo "    default \"\";"
    echo "  }"
    # No cookie: the session key is this request's id, sent back as the cookie.
    echo "  map \$sticky_cookie \$sticky_key { \"\" \$request_id; default \$sticky_cookie; }"
    echo "  map \$sticky_cookie \$sticky_set { \"\" \"Session-A=\$request_id; Path=/; HttpOnly\"; default \"\"; }"
    echo "  upstream pods {"
    echo "    hash \$sticky_key consistent;"
    for i in 0 1 2 3; do echo "    server 127.0.0.1:${BACKEND_PORTS[$i]};"; done
    echo "    keepalive 64;"
    echo "  }"
    echo "  server {"
    echo "    listen 127.0.0.1:$PROXY_PORT;"
    echo "    location / {"
    echo "      proxy_pass http://pods;"
    echo "      proxy_http_version 1.1;"
    echo "      proxy_set_header Connection \"\";"
    echo "      add_header Set-Cookie \$sticky_set;"
    echo "    }"
    echo "  }"
    echo "}"
  } >"$d/nginx.conf"
  echo "$d/nginx.conf"
}

cat >"$WORK/route.yaml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: race
spec:
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /
      backendRefs:
        - name: pods
          port: 80
      sessionPersistence:
        sessionName: Session-A
        type: Cookie
        absoluteTimeout: 60s
        idleTimeout: 30s
EOF
GW_BACKENDS="pods=$(printf '127.0.0.1:%s,' "${BACKEND_PORTS[@]}")"
GW_BACKENDS=${GW_BACKENDS%,}

# Starts contestant $1, prints its PID.
start() {
  local name=$1 n=${1##*-}
  case $name in
    haproxy-*) haproxy -f "$(write_haproxy "$n")" -db >"$WORK/$name.log" 2>&1 & ;;
    nginx-*) nginx -e "$WORK/$name.err" -c "$(write_nginx "$n")" -p "$WORK/nginx-$n" >"$WORK/$name.log" 2>&1 & ;;
    gateway-*)
      RUST_LOG=warn "$GATEWAY" --route "$WORK/route.yaml" --backend "$GW_BACKENDS" \
        --listen "127.0.0.1:$PROXY_PORT" --threads "$n" >"$WORK/$name.log" 2>&1 &
      ;;
    *) echo "race.sh: unknown contestant $name" >&2; return 1 ;;
  esac
  echo $!
}

RUNS="$OUT/runs.tsv"
printf 'round\tpair\tcontestant\trps\tp50_ms\tp99_ms\tmisroutes\terrors\tsessions\tcpu_s_per_100k\n' >"$RUNS"

# Runs contestant $2 in round $1 as part of pair $3 ("-" for none) and
# appends a line to runs.tsv.
measure() {
  local round=$1 name=$2 pair=$3 pid="" url port
  if [ "$name" = direct ]; then
    port=${BACKEND_PORTS[0]}
  else
    port=$PROXY_PORT
    wait_port_free "$port"
    pid=$(start "$name")
    PIDS+=("$pid")
    wait_port "$port"
  fi
  url="http://127.0.0.1:$port/get"
  # Warm-up: connections, pools, caches.
  timeout 30 "$LOADGEN" "$url" --clients "$CLIENTS" --connections "$CONNS" \
    --threads "$LOADGEN_THREADS" --duration 1 --json >/dev/null
  local t0=0 t1=0
  [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
  timeout $((DURATION + 30)) "$LOADGEN" "$url" --clients "$CLIENTS" --connections "$CONNS" \
    --threads "$LOADGEN_THREADS" --duration "$DURATION" --json >"$WORK/run.json"
  [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
  [ -n "$pid" ] && stop "$pid"
  python3 - "$round" "$name" "$((t1 - t0))" "$CLK_TCK" "$WORK/run.json" "$pair" >>"$RUNS" <<'PY'
import json, sys
round_, name, ticks, tck, path, pair = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
r = json.load(open(path))
reqs = max(r["requests"], 1)
cpu = ticks / tck / reqs * 100_000 if name != "direct" else float("nan")
errors = r["non_2xx"] + r["transport_errors"]
print(f'{round_}\t{pair}\t{name}\t{r["rps"]:.0f}\t{r["p50_ms"]:.3f}\t{r["p99_ms"]:.3f}\t{r["misroutes"]}\t{errors}\t{r["sessions_created"]}\t{cpu:.3f}')
PY
  tail -1 "$RUNS" >&2
}

echo "race: $ROUNDS rounds of ${DURATION}s runs, $CLIENTS clients over $CONNS connections; results in $OUT" >&2
for round in $(seq "$ROUNDS"); do
  measure "$round" direct -
  for n in $THREADS; do
    for peer in haproxy nginx; do
      pair="$round/$peer-$n"
      if [ $((round % 2)) -eq 1 ]; then
        measure "$round" "$peer-$n" "$pair"
        measure "$round" "gateway-$n" "$pair"
      else
        measure "$round" "gateway-$n" "$pair"
        measure "$round" "$peer-$n" "$pair"
      fi
    done
  done
done

python3 - "$RUNS" "$THREADS" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
threads = sys.argv[2].split()
med = statistics.median

def rows(name):
    return [r for r in runs if r["contestant"] == name]

names = ["direct"] + [f"{p}-{n}" for n in threads for p in ("haproxy", "nginx", "gateway")]
print("| contestant | req/s | p50 ms | p99 ms | misroutes | errors | proxy CPU s / 100k req | runs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    rs = rows(name)
    if not rs:
        continue
    f = lambda k: med(float(r[k]) for r in rs)
    total = lambda k: sum(int(r[k]) for r in rs)
    cpu = "n/a" if name == "direct" else f'{f("cpu_s_per_100k"):.2f}'
    print(f'| {name} | {f("rps"):.0f} | {f("p50_ms"):.3f} | {f("p99_ms"):.3f} | {total("misroutes")} | {total("errors")} | {cpu} | {len(rs)} |')
print()
print("Gateway / peer, per pair (same round, back to back), median over rounds:")
print()
print("| pair | req/s ratio | p99 ratio | CPU/request ratio | per-round req/s ratios |")
print("|---|---:|---:|---:|---|")
for n in threads:
    for peer in ("haproxy", "nginx"):
        pairs = []
        for key in sorted({r["pair"] for r in runs if r["contestant"] == f"{peer}-{n}"}):
            both = {r["contestant"]: r for r in runs if r["pair"] == key}
            if f"gateway-{n}" in both:
                pairs.append((both[f"gateway-{n}"], both[f"{peer}-{n}"]))
        if not pairs:
            continue
        rps = [float(g["rps"]) / float(p["rps"]) for g, p in pairs]
        p99 = [float(g["p99_ms"]) / float(p["p99_ms"]) for g, p in pairs]
        cpu = [float(g["cpu_s_per_100k"]) / float(p["cpu_s_per_100k"]) for g, p in pairs if float(p["cpu_s_per_100k"]) > 0]
        each = ", ".join(f"{x:.2f}" for x in rps)
        cpu_s = f"{med(cpu):.2f}" if cpu else "n/a"
        print(f"| gateway-{n} / {peer}-{n} | {med(rps):.2f} | {med(p99):.2f} | {cpu_s} | {each} |")
PY
cat "$OUT/summary.md"
