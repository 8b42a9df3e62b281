# The race's contestants (race.sh, race-ab.sh): sourced after common.sh,
# with ROUNDS and DURATION set (CLIENTS, CONNS, LOADGEN_THREADS, BASE_PORT
# and VARIANT_DIR have defaults here).
# Starts the four backends (one NGINX serving four ports) at once, and
# defines `start NAME` (haproxy-N, nginx-N, gateway-N, or VARIANT-N: the
# gateway binary $VARIANT_DIR/VARIANT with N threads) and
# `measure ROUND NAME PAIR`, which appends one run to $OUT/runs.tsv.

CLIENTS=${CLIENTS:-64}
CONNS=${CONNS:-16}
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
BASE_PORT=${BASE_PORT:-19100}
VARIANT_DIR=${VARIANT_DIR:-target/race-ab}
if [ "$ROUNDS" -lt 1 ] || [ "$ROUNDS" -gt 50 ] || [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 120 ]; then
  echo "$SCRIPT: ROUNDS must be 1..50 and DURATION 1..120 seconds" >&2
  exit 2
fi
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
  local name=$1 n=${1##*-}
  case $name in
    haproxy-*) haproxy -f "$(write_haproxy "$n")" -db >"$WORK/$name.log" 2>&1 & ;;
    nginx-*) nginx -e "$WORK/$name.err" -c "$(write_nginx "$n")" -p "$WORK/nginx-$n" >"$WORK/$name.log" 2>&1 & ;;
    *-*)
      local bin=$GATEWAY
      [ "${name%-*}" = gateway ] || bin=$VARIANT_DIR/${name%-*}
      if [ ! -x "$bin" ]; then echo "$SCRIPT: unknown contestant $name (no $bin)" >&2; return 1; fi
      RUST_LOG=warn "$bin" --route "$WORK/route.yaml" --backend "$GW_BACKENDS" \
        --listen "127.0.0.1:$PROXY_PORT" --threads "$n" >"$WORK/$name.log" 2>&1 &
      ;;
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
