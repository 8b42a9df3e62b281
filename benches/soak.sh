#!/usr/bin/env bash
# Soak with faults (issue 12). Not a test and not part of CI: a script whose
# figures go into RELIABILITY.md.
#
# Runs tower-sticky-loadgen (GET only: every request is idempotent) for
# DURATION seconds against two gateway replicas that share a key, over three
# echo backends, all on 127.0.0.1. The load generator spreads its
# connections over both replicas (`--via`); a connection that cannot connect
# or loses its connection moves on to the other replica, as behind an L4
# load balancer. Every 20-40 s one fault, in turn:
#   backend   SIGKILL an echo backend, restart it on its port 2-5 s later
#   drain     drain a backend on both replicas through the admin API, undrain
#             it 5 s later (only if this build serves POST /backends/drain)
#   rotate    rotate the signing key on both replicas, in two steps (new key
#             added as verify-only, then promoted): by rewriting the key files
#             and SIGHUP if this build reloads on SIGHUP, else by a rolling
#             restart with `--key-file new --key-file old`
#   sighup    SIGHUP both replicas (only if this build handles SIGHUP; the
#             default action would kill it)
#   replica   SIGKILL (odd turns) or SIGTERM (even turns) replica B, restart
#             it on its port once it has exited
# At the end it reports requests, failed requests by cause, each failure
# matched with the fault it follows, misroutes, sessions re-pinned against
# what the faults explain, and the RSS and open descriptors of each replica.
#
#   bash benches/soak.sh                 (from the repository root)
#   DURATION=60 CLIENTS=32 RATE=200 bash benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-300}   # seconds of load
CLIENTS=${CLIENTS:-48}      # sessions
CONNECTIONS=${CONNECTIONS:-8}
RATE=${RATE:-300}           # requests per second, in total
SEED=${SEED:-$$}            # for the fault intervals
RANDOM=$SEED

cargo build --quiet --release -p tower-sticky-gateway --bins
BIN=target/release
WORK=$(mktemp -d)
EVENTS=$WORK/faults.log     # <unix ms> <what> <detail>
: >"$EVENTS"
declare -A PID=()           # name -> pid of what this script started

cleanup() {
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
        wait "${PID[$name]}" 2>/dev/null || true
    done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
note() { echo "$(now_ms) $*" >>"$EVENTS"; echo "[$(date -u +%T)] $*"; }

# start NAME CMD...: starts CMD in the background as NAME; waits (at most
# 20 s) for its `listening on http://ADDR` line; sets ADDR (and ADMIN for a
# gateway started with --admin).
start() {
    local name=$1; shift
    : >"$WORK/$name.out"
    "$@" >>"$WORK/$name.out" 2>>"$WORK/$name.err" &
    PID[$name]=$!
    ADDR=""; ADMIN=""
    for _ in $(seq 200); do
        ADDR=$(sed -n 's#^listening on http://##p' "$WORK/$name.out" | head -1)
        if [ -n "$ADDR" ]; then
            ADMIN=$(sed -n 's#^admin listening on http://##p' "$WORK/$name.out" | head -1)
            return 0
        fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "soak: $name did not start:" >&2
    cat "$WORK/$name.err" >&2
    exit 1
}

# stop NAME SIGNAL: signals NAME and waits for it to exit.
stop() {
    kill "-$2" "${PID[$1]}" 2>/dev/null || true
    wait "${PID[$1]}" 2>/dev/null || true
    unset "PID[$1]"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# --- what this build can do -------------------------------------------------
HUP=no
grep -rqs 'SignalKind::hangup' examples/gateway/src && HUP=yes

# --- backends ---------------------------------------------------------------
declare -A BACKEND_ADDR=()
BACKENDS=(soak-a soak-b soak-c)
for pod in "${BACKENDS[@]}"; do
    start "$pod" "$BIN/tower-sticky-echo" --listen 127.0.0.1:0 --pod "$pod"
    BACKEND_ADDR[$pod]=$ADDR
done
ENDPOINTS=$(IFS=,; for pod in "${BACKENDS[@]}"; do printf '%s\n' "${BACKEND_ADDR[$pod]}"; done | paste -sd,)

# Sessions that live longer than the run: every re-pin has a cause.
cat >"$WORK/route.yaml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: soak
spec:
  rules:
    - matches:
        - path:
            type: PathPrefix
            value: /
      backendRefs:
        - name: backend
          port: 3000
      sessionPersistence:
        sessionName: Session-A
        absoluteTimeout: 1h
        cookieConfig:
          lifetimeType: Permanent
EOF

# --- keys -------------------------------------------------------------------
KEY_N=0
new_key() { KEY_N=$((KEY_N + 1)); NEW_KEY=$WORK/key-$KEY_N; head -c 32 /dev/urandom >"$NEW_KEY"; }
new_key
CUR_KEY=$NEW_KEY
# Backend ids are keyed by their own secret, shared and never rotated.
head -c 32 /dev/urandom >"$WORK/backend-id-key"
# With SIGHUP reload the replicas read these two files; they are rewritten
# (by rename) to rotate.
cp "$CUR_KEY" "$WORK/key-first"; cp "$CUR_KEY" "$WORK/key-second"
KEY_ARGS_HUP=(--key-file "$WORK/key-first" --key-file "$WORK/key-second")
KEY_ARGS=(--key-file "$CUR_KEY")

# --- gateways ---------------------------------------------------------------
declare -A GW_ADDR=() GW_ADMIN=() GW_START_RSS=() GW_START_FDS=() GW_SINCE=()
gateway() { # NAME LISTEN
    local keys=("${KEY_ARGS[@]}")
    [ "$HUP" = yes ] && keys=("${KEY_ARGS_HUP[@]}")
    start "$1" "$BIN/tower-sticky-gateway" --listen "$2" --admin 127.0.0.1:0 --threads 1 \
        --route "$WORK/route.yaml" --backend "backend=$ENDPOINTS" \
        --backend-id-key "$WORK/backend-id-key" "${keys[@]}"
    GW_ADDR[$1]=$ADDR; GW_ADMIN[$1]=$ADMIN; GW_SINCE[$1]=$(now_ms)
    GW_START_RSS[$1]=""; GW_START_FDS[$1]=""
}
gateway gw-a 127.0.0.1:0
gateway gw-b 127.0.0.1:0

DRAIN=no
pod=${BACKENDS[0]}
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
    "http://${GW_ADMIN[gw-a]}/backends/undrain?service=default/backend&endpoint=${BACKEND_ADDR[$pod]}" || true)
case $code in 000 | 404 | 405) ;; *) DRAIN=yes ;; esac
echo "soak: ${DURATION}s, $CLIENTS clients over $CONNECTIONS connections at $RATE req/s;" \
    "replicas ${GW_ADDR[gw-a]} ${GW_ADDR[gw-b]}; backends $ENDPOINTS; SIGHUP reload: $HUP; admin drain: $DRAIN"

# --- load -------------------------------------------------------------------
"$BIN/tower-sticky-loadgen" "http://${GW_ADDR[gw-a]}/get" \
    --via "${GW_ADDR[gw-a]}" --via "${GW_ADDR[gw-b]}" \
    --clients "$CLIENTS" --connections "$CONNECTIONS" --rate "$RATE" --timeout 5 \
    --reconnect-after 200 \
    --duration "$DURATION" --max-duration "$((DURATION + 5))" \
    --events "$WORK/load.log" --json >"$WORK/load.json" 2>"$WORK/load.err" &
PID[loadgen]=$!
LOAD_START=$(now_ms)

sample_start() { # after a replica's warm-up
    for gw in gw-a gw-b; do
        if [ -z "${GW_START_RSS[$gw]}" ] && [ $(( $(now_ms) - ${GW_SINCE[$gw]} )) -ge 5000 ]; then
            GW_START_RSS[$gw]=$(rss_kb "${PID[$gw]}"); GW_START_FDS[$gw]=$(fds "${PID[$gw]}")
        fi
    done
}

# Sleeps up to $1 seconds, returning early when the load has ended.
nap() {
    local until=$(( $(now_ms) + $1 * 1000 ))
    while [ "$(now_ms)" -lt "$until" ]; do
        kill -0 "${PID[loadgen]}" 2>/dev/null || return 1
        sample_start
        sleep 0.5
    done
}

hup_both() {
    for gw in gw-a gw-b; do kill -HUP "${PID[$gw]}"; done
}

# Writes FILE atomically (by rename), as kubelet updates a mounted Secret.
put_file() { cp "$2" "$1.tmp"; mv "$1.tmp" "$1"; }

restart_replica() { # NAME SIGNAL
    local listen=${GW_ADDR[$1]}
    note "replica-stop $1 ${GW_ADDR[$1]} $2"
    stop "$1" "$2"
    note "replica-exited $1 ${GW_ADDR[$1]}"
    gateway "$1" "$listen"
    note "replica-up $1 ${GW_ADDR[$1]}"
}

FAULTS=(backend replica rotate drain sighup)
turn=0 replica_turn=0 backend_turn=0
while nap $((20 + RANDOM % 21)); do
    fault=${FAULTS[$((turn % ${#FAULTS[@]}))]}
    turn=$((turn + 1))
    case $fault in
    backend)
        pod=${BACKENDS[$((backend_turn % ${#BACKENDS[@]}))]}
        backend_turn=$((backend_turn + 1))
        note "backend-down $pod ${BACKEND_ADDR[$pod]}"
        stop "$pod" KILL
        nap $((2 + RANDOM % 4)) || true
        start "$pod" "$BIN/tower-sticky-echo" --listen "${BACKEND_ADDR[$pod]}" --pod "$pod"
        note "backend-up $pod ${BACKEND_ADDR[$pod]}"
        ;;
    replica)
        replica_turn=$((replica_turn + 1))
        if [ $((replica_turn % 2)) -eq 1 ]; then restart_replica gw-b KILL; else restart_replica gw-b TERM; fi
        ;;
    rotate)
        new_key
        next=$NEW_KEY
        if [ "$HUP" = yes ]; then
            # 1. every replica verifies the new key; 2. it signs with it.
            put_file "$WORK/key-second" "$next"; hup_both
            note "rotate-verify $(basename "$next")"
            nap 2 || true
            put_file "$WORK/key-first" "$next"; put_file "$WORK/key-second" "$CUR_KEY"; hup_both
            note "rotate-sign $(basename "$next")"
        else
            KEY_ARGS=(--key-file "$CUR_KEY" --key-file "$next")
            restart_replica gw-a TERM; restart_replica gw-b TERM
            note "rotate-verify $(basename "$next")"
            KEY_ARGS=(--key-file "$next" --key-file "$CUR_KEY")
            restart_replica gw-a TERM; restart_replica gw-b TERM
            note "rotate-sign $(basename "$next")"
        fi
        CUR_KEY=$next
        ;;
    drain)
        if [ "$DRAIN" = no ]; then note "skip drain (no admin drain in this build)"; continue; fi
        pod=${BACKENDS[$((turn % ${#BACKENDS[@]}))]}
        for gw in gw-a gw-b; do
            curl -s -o /dev/null -X POST \
                "http://${GW_ADMIN[$gw]}/backends/drain?service=default/backend&endpoint=${BACKEND_ADDR[$pod]}"
        done
        note "drain $pod ${BACKEND_ADDR[$pod]}"
        nap 5 || true
        for gw in gw-a gw-b; do
            curl -s -o /dev/null -X POST \
                "http://${GW_ADMIN[$gw]}/backends/undrain?service=default/backend&endpoint=${BACKEND_ADDR[$pod]}"
        done
        note "undrain $pod ${BACKEND_ADDR[$pod]}"
        ;;
    sighup)
        if [ "$HUP" = no ]; then note "skip sighup (SIGHUP is not handled by this build)"; continue; fi
        hup_both
        note "sighup both"
        ;;
    esac
done
wait "${PID[loadgen]}" || { echo "soak: the load generator failed:" >&2; cat "$WORK/load.err" >&2; exit 1; }
unset "PID[loadgen]"

# --- report -----------------------------------------------------------------
echo
echo "== faults"
cut -d' ' -f2- "$EVENTS" | awk '{print $1}' | sort | uniq -c | sed 's/^/  /'
echo "== load"
sed -e 's/"failures":{[^}]*},//' -e 's/,"/,\n  "/g' "$WORK/load.json" | grep -E '"(requests|rps|ok|non_2xx|transport_errors|misroutes|sessions_created|reissued|repinned|no_session|no_pod|connects|p50_ms|p99_ms|max_ms)"' | tr -d '{}' | sed 's/^/  /'
echo "  failed requests by cause: $(grep -o '"failures":{[^}]*}' "$WORK/load.json" | sed 's/"failures"://')"

# Each load event matched with the fault it follows:
# - a failure on replica R between its stop (-0.5 s) and its exit (+1 s)
#   happened "as a replica died"; a refused connect while it was down sent
#   nothing (the connection moved on to the other replica);
# - a re-pin away from a backend between its kill and its restart (+5 s) is
#   explained by that fault; nothing else explains one (a drained backend
#   keeps its sessions).
echo "== failures and re-pins, by the fault they follow"
awk -v start="$LOAD_START" '
    FNR == NR {
        t = $1; what = $2
        if (what == "replica-stop") { stop[$4] = t; n_stop++ ; stops[n_stop] = $4; stop_t[n_stop] = t }
        if (what == "replica-exited") { exited_t[n_stop] = t }
        if (what == "replica-up") { up_t[n_stop] = t }
        if (what == "backend-down") { nb++; b_pod[nb] = $3; b_down[nb] = t }
        if (what == "backend-up") { b_up[nb] = t }
        if (what == "drain") { nd++; d_pod[nd] = $3; d_t[nd] = t }
        next
    }
    {
        t = $1; addr = $2; kind = $3
        if (kind == "failed") {
            cause = $4; why = "unexplained"
            for (i = 1; i <= n_stop; i++) {
                if (stops[i] != addr) continue
                if (cause == "connect" && t >= stop_t[i] && (up_t[i] == "" || t <= up_t[i] + 1000)) { why = "replica down, nothing sent"; break }
                if (t >= stop_t[i] - 500 && (exited_t[i] == "" || t <= exited_t[i] + 1000)) { why = "as the replica died"; break }
            }
            count[cause " (" why ")"]++
            if (why == "unexplained") bad++
        } else if (kind == "repinned") {
            from = $4; why = "unexplained"
            for (i = 1; i <= nb; i++)
                if (b_pod[i] == from && t >= b_down[i] && (b_up[i] == "" || t <= b_up[i] + 5000)) why = "backend " from " killed"
            count["re-pinned (" why ")"]++
            if (why == "unexplained") bad++
        } else if (kind == "misroute") {
            count["misroute"]++; bad++
        }
    }
    END {
        for (k in count) printf "  %6d  %s\n", count[k], k
        printf "  unexplained failures, re-pins and misroutes: %d (target 0)\n", bad + 0
    }
' "$EVENTS" "$WORK/load.log" | sort -k2

echo "== replicas: RSS and open descriptors, after 5 s of warm-up and at the end"
for gw in gw-a gw-b; do
    since=$(( (${GW_SINCE[$gw]} - LOAD_START) / 1000 ))
    printf '  %s (pid %s, up since load+%ss): RSS %s -> %s KiB, fds %s -> %s\n' \
        "$gw" "${PID[$gw]}" "$since" "${GW_START_RSS[$gw]:-?}" "$(rss_kb "${PID[$gw]}")" \
        "${GW_START_FDS[$gw]:-?}" "$(fds "${PID[$gw]}")"
done
echo "  (backend kills explain at most the sessions pinned to the killed pod: about $((CLIENTS / ${#BACKENDS[@]})) each)"
[ -n "${KEEP:-}" ] && echo "logs kept in $WORK"
exit 0
