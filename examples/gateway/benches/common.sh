# Shared preamble of the gateway's benchmark scripts (race.sh, race-ab.sh,
# scale.sh): sourced, not run. The caller sets SCRIPT (its name, for
# messages) and TOOLS (the commands it needs) first. This file then moves to
# the repository root, checks the tools, builds the release binaries
# (GATEWAY, LOADGEN), creates OUT and a scratch WORK directory, and stops
# every PID in PIDS on exit. Every wait below is bounded.

cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

missing=()
for tool in $TOOLS; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "$SCRIPT: missing tools: ${missing[*]}" >&2
  echo "  (Debian: apt-get install haproxy nginx python3; rustup for cargo)" >&2
  exit 2
fi

cargo build --release -p tower-sticky-gateway --bins >&2
GATEWAY=target/release/tower-sticky-gateway
LOADGEN=target/release/tower-sticky-loadgen

mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits (at most $2 seconds, 10 by default) until 127.0.0.1:$1 accepts
# connections.
wait_port() {
  local port=$1 secs=${2:-10}
  for _ in $(seq $((secs * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$SCRIPT: nothing listens on 127.0.0.1:$port after $secs s" >&2
  return 1
}

# Writes the race's HTTPRoute to $1: the seed's cookie rule with
# HAProxy-like limits (maxlife 60s, maxidle 30s) over the Service `pods`.
race_route() {
  cat >"$1" <<'EOF'
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
}

# The gateway's `--backend` for the Service `pods` on 127.0.0.1 ports $@.
pods_backend() {
  local list
  list=$(printf '127.0.0.1:%s,' "$@")
  echo "pods=${list%,}"
}

# Waits (at most 10 s) until nothing listens on 127.0.0.1:$1 any more.
wait_port_free() {
  local port=$1
  for _ in $(seq 100); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$SCRIPT: 127.0.0.1:$port is still busy after 10 s" >&2
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

# Resident memory of a process, KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# CPU ticks of a process and its direct children (NGINX workers; HAProxy
# and the gateway have none): "USER SYS" (utime and stime).
cpu_user_sys() {
  local pid=$1 user=0 sys=0 p u s
  for p in $pid $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
    if [ -r "/proc/$p/stat" ]; then
      # Fields after the command name, which is in parentheses.
      read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12, $13}')
      user=$((user + u))
      sys=$((sys + s))
    fi
  done
  echo "$user $sys"
}

# CPU ticks (utime+stime) of a process and its direct children.
cpu_ticks() {
  local u s
  read -r u s < <(cpu_user_sys "$1")
  echo $((u + s))
}

# Builds the race's floor (benches/floor, a crate of its own outside the
# workspace) into target/floor and sets FLOOR to its binary.
build_floor() {
  CARGO_TARGET_DIR="$PWD/target/floor" cargo build --release --offline \
    --manifest-path examples/gateway/benches/floor/Cargo.toml >&2
  FLOOR=target/floor/release/sticky-floor
}

# NGINX (one process, 1 worker, in its own directory $1) serving $3 backend
# ports from $2 on, each answering any request with a small JSON body
# naming its pod (`pod-I`) and an `x-pod` header; waits for the first and
# last port.
nginx_backends() {
  local d=$1 first=$2 n=$3 i
  mkdir -p "$d"
  {
    echo "worker_processes 1; pid $d/nginx.pid; daemon off; error_log $d/error.log warn;"
    echo "worker_rlimit_nofile 8192;"
    echo "events { worker_connections 8192; }"
    echo "http { access_log off; keepalive_requests 1000000; default_type application/json;"
    echo "  client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;"
    for i in $(seq 0 $((n - 1))); do
      echo "  server { listen 127.0.0.1:$((first + i)); location / { add_header x-pod pod-$i; return 200 '{\n \"path\": \"\$uri\",\n \"pod\": \"pod-$i\"\n}\n'; } }"
    done
    echo "}"
  } >"$d/nginx.conf"
  nginx -e "$d/error.log" -c "$d/nginx.conf" -p "$d" &
  PIDS+=($!)
  wait_port "$first"
  wait_port $((first + n - 1))
}

# Writes to $1 an HAProxy configuration: nbthread $2, maxconn $3, listening
# on 127.0.0.1:$4, cookie insertion (Session-A, maxidle $7, maxlife $8) over
# $6 servers `pod-I` on the ports from $5 on.
haproxy_config() {
  local f=$1 threads=$2 maxconn=$3 port=$4 first=$5 n=$6 maxidle=$7 maxlife=$8 i
  {
    echo "global"
    echo "  nbthread $threads"
    echo "  maxconn $maxconn"
    echo "defaults"
    echo "  mode http"
    echo "  timeout connect 5s"
    echo "  timeout client 30s"
    echo "  timeout server 30s"
    echo "frontend fe"
    echo "  bind 127.0.0.1:$port"
    echo "  default_backend pods"
    echo "backend pods"
    echo "  balance roundrobin"
    echo "  cookie Session-A insert indirect nocache maxidle $maxidle maxlife $maxlife"
    for i in $(seq 0 $((n - 1))); do
      echo "  server pod-$i 127.0.0.1:$((first + i)) cookie pod-$i"
    done
  } >"$f"
}
