#!/usr/bin/env bash
# Deterministic per-request cost of gateway binaries (BENCHMARKS.md
# section 2.4; the history in BENCHMARKS-HISTORY.md section 6): user-space instructions under callgrind, and syscalls under
# strace, each taken as the marginal count between two runs of N1 and N2
# requests (start-up and shut-down cancel out). The instruction count
# leaves out the `metrics` recorder's clock calibration (it loops for a
# time, not a count) and gives SHA-256 apart (see below). Repeat runs of
# one binary then differ by ~200 instructions; a rebuild after a small
# change moves the total by up to ~500 through inlining.
#
#   VARIANTS="gw-old gateway" TOOL=callgrind \
#       bash examples/gateway/benches/instructions.sh      (from the repository root)
#
# Each variant is a gateway binary $VARIANT_DIR/VARIANT (default
# target/race-ab/; `gateway` is this tree's release build), run with
# `--threads 1` in front of the race's four NGINX backends (one NGINX, four
# ports), driven by `tower-sticky-loadgen --clients 64 --connections 16
# --requests N` (this tree's load generator for every variant). The HTTP/1
# path (issue 21) is a parameter: VARIANT.lean or VARIANT.hyper runs VARIANT
# with `--http1 lean` or `--http1 hyper` (`VARIANTS="gateway.lean
# gateway.hyper"`); a bare VARIANT runs with its default. `haproxy` and
# `floor` are the race's HAProxy and floor (one thread), for comparison. TOOL is
# `callgrind` (instructions), `strace` (`strace -c -f`: syscalls by name)
# or `dhat` (valgrind's DHAT: heap blocks and bytes allocated). Prints one
# line per variant: instructions (syscalls, allocations) per request, and
# for strace the per-request count of each syscall that occurs at least
# once per 100 requests. Results also go to $OUT/instructions.tsv, and each
# run's raw output to $OUT/TOOL.VARIANT.N.
set -euo pipefail

VARIANTS=${VARIANTS:-"gateway"}
TOOL=${TOOL:-callgrind}
N1=${N1:-2000}
N2=${N2:-20000}
OUT=${OUT:-target/race-ab}
VARIANT_DIR=${VARIANT_DIR:-target/race-ab}
BASE_PORT=${BASE_PORT:-19200}

SCRIPT=instructions.sh
case $TOOL in
  callgrind | dhat) TOOLS="valgrind nginx python3 cargo" ;;
  strace) TOOLS="strace nginx python3 cargo" ;;
  *) echo "$SCRIPT: TOOL must be callgrind, strace or dhat" >&2; exit 2 ;;
esac
source "$(dirname "$0")/common.sh"
if [ "$N1" -lt 1 ] || [ "$N2" -le "$N1" ] || [ "$N2" -gt 1000000 ]; then
  echo "$SCRIPT: need 1 <= N1 < N2 <= 1000000" >&2
  exit 2
fi

PROXY_PORT=$((BASE_PORT + 10))
nginx_backends "$WORK/backends" "$BASE_PORT" 4
race_route "$WORK/route.yaml"
GW_BACKENDS=$(pods_backend $BASE_PORT $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)))

# Runs variant $1 for $2 requests under TOOL: the command and its arguments
# follow. Sets RESULT to the output file.
one() {
  local name=$1 n=$2 out="$WORK/$TOOL.$1.$2" pid
  shift 2
  local gw=("$@")
  case $TOOL in
    callgrind) RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
      "${gw[@]}" >"$WORK/gw.log" 2>&1 & ;;
    dhat) RUST_LOG=warn valgrind --tool=dhat --dhat-out-file="$out" \
      "${gw[@]}" >"$WORK/gw.log" 2>&1 & ;;
    strace) RUST_LOG=warn strace -f -c -o "$out" \
      "${gw[@]}" >"$WORK/gw.log" 2>&1 & ;;
  esac
  pid=$!
  PIDS+=("$pid")
  wait_port "$PROXY_PORT" 120 # valgrind starts slowly
  timeout 600 "$LOADGEN" "http://127.0.0.1:$PROXY_PORT/get" --clients 64 --connections 16 \
    --requests "$n" --json >"$WORK/run.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); e=r["non_2xx"]+r["transport_errors"]+r["misroutes"]; sys.exit(e!=0)' "$WORK/run.json" \
    || { echo "$SCRIPT: errors in the run: $(cat "$WORK/run.json")" >&2; exit 1; }
  # SIGTERM to the gateway (under strace, its child): it drains and exits,
  # and the tool writes its counts.
  if [ "$TOOL" = strace ]; then
    for p in $(pgrep -P "$pid"); do kill -TERM "$p" 2>/dev/null || true; done
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local keep=()
  for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
  PIDS=("${keep[@]}")
  wait_port_free "$PROXY_PORT"
  # Kept for callgrind_annotate (or reading): $OUT/TOOL.VARIANT.N.
  cp "$out" "$OUT/"
  RESULT=$out
}

[ -f "$OUT/instructions.tsv" ] || printf 'tool\tvariant\tn1\tn2\tper_request\tdetail\n' >"$OUT/instructions.tsv"
for v in $VARIANTS; do
  base=$v
  http1=()
  case $v in *.lean | *.hyper) http1=(--http1 "${v##*.}"); base=${v%.*} ;; esac
  case $base in
    haproxy) # the race's HAProxy, one thread: for comparison
      haproxy_config "$WORK/haproxy.cfg" 1 4000 "$PROXY_PORT" "$BASE_PORT" 4 30s 60s
      cmd=(haproxy -f "$WORK/haproxy.cfg" -db) ;;
    floor) # the race's floor, one thread
      build_floor
      cmd=("$FLOOR" --listen "127.0.0.1:$PROXY_PORT" --threads 1 --backend
        "127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2)),127.0.0.1:$((BASE_PORT + 3))") ;;
    *)
      bin=$VARIANT_DIR/$base
      [ "$base" = gateway ] && bin=$GATEWAY
      if [ ! -x "$bin" ]; then echo "$SCRIPT: no binary $bin" >&2; exit 2; fi
      cmd=("$bin" --route "$WORK/route.yaml" --backend "$GW_BACKENDS"
        --listen "127.0.0.1:$PROXY_PORT" --threads 1 "${http1[@]}") ;;
  esac
  one "$v" "$N1" "${cmd[@]}"
  a=$RESULT
  one "$v" "$N2" "${cmd[@]}"
  b=$RESULT
  python3 - "$TOOL" "$v" "$N1" "$N2" "$a" "$b" <<'PY' | tee -a "$OUT/instructions.tsv"
import re, sys
tool, name, n1, n2, a, b = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def callgrind(path):
    # The total less quanta's clock calibration (the `metrics` recorder's,
    # at start-up): it loops for a time, not a count, and moved single
    # runs by up to 400 instructions per request.
    import subprocess
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", path],
                         capture_output=True, text=True, check=True).stdout
    total = re.search(r"^([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", out, re.M)
    if not total:
        raise SystemExit(f"no totals in {path}")
    def inclusive(name):
        return max([int(l.split()[0].replace(",", "")) for l in out.splitlines()
                    if re.search(name + r"(::h[0-9a-f]+)?( \[|$)", l)] or [0])
    # SHA-256 (the library's HMAC, in software under valgrind) is given
    # apart: how many tokens are signed depends on the run's wall-clock
    # length (sessions refresh with time), which moved it by 100-600 per
    # request between runs of one binary.
    sha = inclusive(r"sha2::sha256::compress256")
    return {"Ir": int(total.group(1).replace(",", "")) - inclusive(r"quanta::Clock::new") - sha,
            "sha256": sha}
def strace(path):
    calls = {}
    for line in open(path):
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and re.match(r"^[0-9.]+$", f[0]) and f[-1] != "total":
            calls[f[-1]] = int(f[3])
    return calls
def dhat(path):
    # Every allocation point's total blocks (`tbk`) and bytes (`tb`).
    import json
    pps = json.load(open(path))["pps"]
    return {"blocks": sum(p["tbk"] for p in pps), "bytes": sum(p["tb"] for p in pps)}
read = {"callgrind": callgrind, "strace": strace, "dhat": dhat}[tool]
x, y = read(a), read(b)
per = {k: (y.get(k, 0) - x.get(k, 0)) / (n2 - n1) for k in set(x) | set(y)}
total = sum(per.values())
detail = ", ".join(f"{k} {v:.3f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.01)
if tool == "callgrind":
    print(f"{tool}\t{name}\t{n1}\t{n2}\t{per['Ir']:.0f}\tless SHA-256; SHA-256 {per['sha256']:.0f}")
elif tool == "dhat":
    print(f"{tool}\t{name}\t{n1}\t{n2}\t{per['blocks']:.2f}\tallocations per request; {per['bytes']:.0f} bytes per request")
else:
    print(f"{tool}\t{name}\t{n1}\t{n2}\t{total:.3f}\t{detail}")
PY
done
