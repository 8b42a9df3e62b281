# The race's contestants (race.sh, race-ab.sh): sourced after common.sh,
# with ROUNDS and DURATION set (LOAD, CLIENTS, CONNS, LOADGEN_THREADS,
# WRK_THREADS, BASE_PORT and VARIANT_DIR have defaults here).
# Starts the four backends (one NGINX serving four ports) at once, builds the
# floor, and defines `start NAME` and `measure ROUND NAME PAIR`, which
# appends one run to $OUT/runs.tsv. Contestants (N: threads):
#   haproxy-N   HAProxy, nbthread N, cookie insertion
#   nginx-N     NGINX, worker_processes N, a consistent hash of the cookie
#   floor-N     benches/floor: the least a sticky proxy does (issue 21)
#   gateway-N   this tree's gateway, its default `--http1`
#   VARIANT-N   the gateway binary $VARIANT_DIR/VARIANT; for a build from
#               before the lean HTTP/1 path was removed (issue 21),
#               VARIANT.lean-N and VARIANT.hyper-N run it with `--http1 lean`
#               / `hyper`
# LOAD is `loadgen` (tower-sticky-loadgen: CLIENTS sessions over CONNS
# connections, LOADGEN_THREADS threads; it counts misroutes) or `wrk` (wrk
# with benches/sticky.lua, CONNS connections, WRK_THREADS threads, one
# session per wrk thread: resumed requests).

LOAD=${LOAD:-loadgen}
CLIENTS=${CLIENTS:-64}
if [ "$LOAD" = wrk ]; then CONNS=${CONNS:-64}; else CONNS=${CONNS:-16}; fi
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
WRK_THREADS=${WRK_THREADS:-1}
BASE_PORT=${BASE_PORT:-19100}
VARIANT_DIR=${VARIANT_DIR:-target/race-ab}
GATEWAY_FLAGS=${GATEWAY_FLAGS:-} # more flags for every gateway contestant, split on spaces
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 50 ] || [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 120 ]; then
  echo "$SCRIPT: ROUNDS must be 1..50 and DURATION 1..120 seconds" >&2
  exit 2
fi
case $LOAD in
  loadgen) ;;
  wrk) command -v wrk >/dev/null || { echo "$SCRIPT: LOAD=wrk needs wrk" >&2; exit 2; } ;;
  *) echo "$SCRIPT: LOAD must be loadgen or wrk" >&2; exit 2 ;;
esac
build_floor
BACKEND_PORTS=()
for i in 0 1 2 3; do BACKEND_PORTS+=($((BASE_PORT + i))); done
PROXY_PORT=$((BASE_PORT + 10))
CLK_TCK=$(getconf CLK_TCK)

# --- backends: one NGINX, four ports -------------------------------------
nginx_backends "$WORK/backends" "$BASE_PORT" 4

# --- contestant configurations -------------------------------------------
write_haproxy() { # threads
  haproxy_config "$WORK/haproxy-$1.cfg" "$1" 4000 "$PROXY_PORT" "$BASE_PORT" 4 30s 60s
  echo "$WORK/haproxy-$1.cfg"
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

race_route "$WORK/route.yaml"
GW_BACKENDS=$(pods_backend "${BACKEND_PORTS[@]}")

# Starts contestant $1, prints its PID.
start() {
  local name=$1 n=${1##*-} base=${1%-*} bin http1=()
  case $name in
    haproxy-*) haproxy -f "$(write_haproxy "$n")" -db >"$WORK/$name.log" 2>&1 & ;;
    nginx-*) nginx -e "$WORK/$name.err" -c "$(write_nginx "$n")" -p "$WORK/nginx-$n" >"$WORK/$name.log" 2>&1 & ;;
    floor-*)
      "$FLOOR" --listen "127.0.0.1:$PROXY_PORT" --backend "$(printf '127.0.0.1:%s,' "${BACKEND_PORTS[@]}" | sed 's/,$//')" \
        --threads "$n" >"$WORK/$name.log" 2>&1 &
      ;;
    *-*)
      case $base in
        *.lean | *.hyper) http1=(--http1 "${base##*.}"); base=${base%.*} ;;
      esac
      bin=$GATEWAY
      [ "$base" = gateway ] || bin=$VARIANT_DIR/$base
      if [ ! -x "$bin" ]; then echo "$SCRIPT: unknown contestant $name (no $bin)" >&2; return 1; fi
      RUST_LOG=warn "$bin" --route "$WORK/route.yaml" --backend "$GW_BACKENDS" \
        --listen "127.0.0.1:$PROXY_PORT" --threads "$n" "${http1[@]}" $GATEWAY_FLAGS >"$WORK/$name.log" 2>&1 &
      ;;
  esac
  echo $!
}

# Runs the load ($LOAD) against $1 for $2 seconds; writes the loadgen's JSON
# fields (requests, rps, p50_ms, p99_ms, non_2xx, transport_errors,
# misroutes, sessions_created) to $3.
load() {
  local url=$1 secs=$2 json=$3
  if [ "$LOAD" = wrk ]; then
    timeout $((secs + 30)) wrk -t "$WRK_THREADS" -c "$CONNS" -d "${secs}s" \
      -s examples/gateway/benches/sticky.lua "$url" >"$WORK/wrk.out"
    sed -n 's/^WRK_JSON //p' "$WORK/wrk.out" >"$json"
    grep '^first misroute' "$WORK/wrk.out" >&2 || true
  else
    timeout $((secs + 30)) "$LOADGEN" "$url" --clients "$CLIENTS" --connections "$CONNS" \
      --threads "$LOADGEN_THREADS" --duration "$secs" --json >"$json"
  fi
}

RUNS="$OUT/runs.tsv"
printf 'round\tpair\tcontestant\trps\tp50_ms\tp99_ms\tmisroutes\terrors\tsessions\tcpu_s_per_100k\tuser_us\tsys_us\tload\n' >"$RUNS"

# Runs contestant $2 in round $1 as part of pair $3 ("-" for none) and
# appends a line to runs.tsv: the load's figures, the proxy's CPU per
# request (all, user and system) over the measured window, and the 1-minute
# load average at its end.
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
  load "$url" 1 "$WORK/warm.json"
  local u0=0 s0=0 u1=0 s1=0
  [ -n "$pid" ] && read -r u0 s0 < <(cpu_user_sys "$pid")
  load "$url" "$DURATION" "$WORK/run.json"
  [ -n "$pid" ] && read -r u1 s1 < <(cpu_user_sys "$pid")
  [ -n "$pid" ] && stop "$pid"
  python3 - "$round" "$name" "$((u1 - u0))" "$((s1 - s0))" "$CLK_TCK" "$WORK/run.json" "$pair" \
    "$(cut -d' ' -f1 /proc/loadavg)" >>"$RUNS" <<'PY'
import json, sys
round_, name, user, sys_, tck, path, pair, load = sys.argv[1:9]
user, sys_, tck = int(user), int(sys_), int(tck)
r = json.load(open(path))
reqs = max(r["requests"], 1)
proxy = name != "direct"
cpu = (user + sys_) / tck / reqs * 100_000 if proxy else float("nan")
user_us = user / tck / reqs * 1e6 if proxy else float("nan")
sys_us = sys_ / tck / reqs * 1e6 if proxy else float("nan")
errors = r["non_2xx"] + r["transport_errors"]
print(f'{round_}\t{pair}\t{name}\t{r["rps"]:.0f}\t{r["p50_ms"]:.3f}\t{r["p99_ms"]:.3f}\t{r["misroutes"]}\t{errors}\t{r["sessions_created"]}\t{cpu:.3f}\t{user_us:.2f}\t{sys_us:.2f}\t{load}')
PY
  tail -1 "$RUNS" >&2
}
