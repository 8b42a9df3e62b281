#!/usr/bin/env bash
# A/B race: several gateway binaries against HAProxy in the same run, to
# tell what a change to the gateway costs (BENCHMARKS-HISTORY.md section 6: coarse.rs
# against tokio time, conn.rs against hyper-util's auto::Builder).
#
#   cp target/release/tower-sticky-gateway target/race-ab/gw-base   # build A
#   ... change the code, build again ...
#   cp target/release/tower-sticky-gateway target/race-ab/gw-new    # build B
#   VARIANTS="gw-base gw-new" ROUNDS=5 DURATION=4 THREADS=1 \
#       bash examples/gateway/benches/race-ab.sh      (from the repository root)
#
# The same backends, load and contestant configurations as race.sh
# (contestants.sh). Each variant is a gateway binary $VARIANT_DIR/VARIANT
# (default target/race-ab/; `gateway` is this tree's release build;
# for a build from before issue 21 removed the lean path, VARIANT.lean and
# VARIANT.hyper run it with `--http1 lean` / `hyper`; and
# LOAD=wrk measures with wrk instead of the loadgen, as in race.sh). Each
# round runs haproxy-N and every VARIANT-N for N in THREADS, back to back,
# the order rotated by one per round; the summary gives each variant's
# median over rounds of its req/s, p99 and CPU per request divided by
# HAProxy's in the same round, which is all that means anything on a shared
# machine. Results go to $OUT (default target/race-ab): runs.tsv (every run)
# and summary.md.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
THREADS=${THREADS:-"1"}
VARIANTS=${VARIANTS:-"gateway"}
OUT=${OUT:-target/race-ab}

SCRIPT=race-ab.sh
TOOLS="haproxy nginx python3 cargo"
source "$(dirname "$0")/common.sh"
source examples/gateway/benches/contestants.sh

echo "race-ab: $ROUNDS rounds of ${DURATION}s runs, $CLIENTS clients over $CONNS connections; contestants: haproxy and $VARIANTS; results in $OUT" >&2
for round in $(seq "$ROUNDS"); do
  for n in $THREADS; do
    list=(haproxy-$n)
    for v in $VARIANTS; do list+=("$v-$n"); done
    # The order rotates by round, so no contestant always runs first.
    k=$(( (round - 1) % ${#list[@]} ))
    order=("${list[@]:$k}" "${list[@]:0:$k}")
    for c in "${order[@]}"; do measure "$round" "$c" "$round/haproxy-$n"; done
  done
done

python3 - "$RUNS" "$THREADS" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
threads = sys.argv[2].split()
med = statistics.median
names = sorted({r["contestant"] for r in runs})
print("| contestant | req/s | p50 ms | p99 ms | misroutes | errors | proxy CPU s / 100k req | runs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    rs = [r for r in runs if r["contestant"] == name]
    f = lambda k: med(float(r[k]) for r in rs)
    total = lambda k: sum(int(r[k]) for r in rs)
    print(f'| {name} | {f("rps"):.0f} | {f("p50_ms"):.3f} | {f("p99_ms"):.3f} | {total("misroutes")} | {total("errors")} | {f("cpu_s_per_100k"):.2f} | {len(rs)} |')
print()
print("| variant / haproxy (same round) | req/s ratio | p99 ratio | CPU/request ratio | per-round req/s ratios |")
print("|---|---:|---:|---:|---|")
for n in threads:
    for name in names:
        if name.startswith("haproxy") or not name.endswith(f"-{n}"):
            continue
        pairs = []
        for key in sorted({r["pair"] for r in runs}):
            both = {r["contestant"]: r for r in runs if r["pair"] == key}
            if name in both and f"haproxy-{n}" in both:
                pairs.append((both[name], both[f"haproxy-{n}"]))
        if not pairs:
            continue
        rps = [float(g["rps"]) / float(p["rps"]) for g, p in pairs]
        p99 = [float(g["p99_ms"]) / float(p["p99_ms"]) for g, p in pairs]
        cpu = [float(g["cpu_s_per_100k"]) / float(p["cpu_s_per_100k"]) for g, p in pairs]
        print(f"| {name} / haproxy-{n} | {med(rps):.3f} | {med(p99):.2f} | {med(cpu):.3f} | {', '.join(f'{x:.2f}' for x in rps)} |")
PY
cat "$OUT/summary.md"
