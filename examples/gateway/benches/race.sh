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

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-6}
THREADS=${THREADS:-"1 2"}
OUT=${OUT:-target/race}

SCRIPT=race.sh
TOOLS="haproxy nginx python3 cargo"
source "$(dirname "$0")/common.sh"
source examples/gateway/benches/contestants.sh

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
