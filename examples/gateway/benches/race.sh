#!/usr/bin/env bash
# Side-by-side race: the example gateway against HAProxy and the floor (and
# NGINX, or older gateway builds, if asked), doing the same sticky routing on
# the same four backends under the same load, in one run.
#
#   bash examples/gateway/benches/race.sh            (from the repository root)
#   ROUNDS=6 DURATION=10 LOAD=wrk bash examples/gateway/benches/race.sh
#   CONTESTANTS="haproxy nginx gateway" bash examples/gateway/benches/race.sh
#
# Everything listens on 127.0.0.1. Backends: one NGINX process (1 worker)
# serving four ports, each a fixed JSON body naming its pod plus an `x-pod`
# header: cheap, and identical for every contestant. Load (LOAD): `loadgen`,
# examples/loadgen (CLIENTS sessions, each with its own cookie jar, rotated
# over CONNS connections, so connection reuse cannot fake stickiness; it
# counts misroutes), or `wrk` (64 connections, benches/sticky.lua: one
# resumed session per wrk thread, the issue's race). Contestants (see
# contestants.sh), each measured over DURATION seconds after a 1 s warm-up:
#   direct      the load straight to one backend (the ceiling; no stickiness)
#   haproxy-N   HAProxy, nbthread N, `cookie Session-A insert indirect nocache
#               maxidle 30s maxlife 60s`
#   floor-N     benches/floor, N threads: httparse, one HMAC per request,
#               cookie stripping and insertion, per-client upstream keep-alive
#   gateway-N   examples/gateway --threads N, the same cookie with
#               absoluteTimeout 60s and idleTimeout 30s, RUST_LOG=warn (no
#               per-request access log, like the peers here)
#   nginx-N     NGINX, worker_processes N, `hash $sticky consistent` where
#               $sticky is the Session-A cookie, or a fresh $request_id that is
#               also set as the cookie (NGINX has no cookie insertion of its
#               own, and `$cookie_Session-A` would read as `$cookie_Session`
#               followed by `-A`, so a map over $http_cookie extracts it)
#   VARIANT-N   an older gateway build ($VARIANT_DIR/VARIANT, contestants.sh)
# Each round runs `direct`, then, for N in THREADS, every contestant of
# CONTESTANTS with N threads back to back, the order rotated by one per
# round (so with four contestants and four rounds each runs once in every
# position). Ratios (gateway/HAProxy, gateway/floor, ...) are taken
# within a round and the median over the rounds is reported, with the
# per-round values. Proxy CPU is utime and stime from /proc/PID/stat of the
# proxy's processes over the measured window, per request; `load` is the
# 1-minute load average at the end of each run.
#
# Results go to $OUT (default target/race, or target/race-wrk): runs.tsv
# (every run) and summary.md. Every process started is stopped by PID;
# every loop is bounded.
set -euo pipefail

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-6}
THREADS=${THREADS:-"1 2"}
CONTESTANTS=${CONTESTANTS:-"haproxy gateway floor"}
LOAD=${LOAD:-loadgen}
if [ "$LOAD" = wrk ]; then OUT=${OUT:-target/race-wrk}; else OUT=${OUT:-target/race}; fi

SCRIPT=race.sh
TOOLS="haproxy nginx python3 cargo"
source "$(dirname "$0")/common.sh"
source examples/gateway/benches/contestants.sh

echo "race: $ROUNDS rounds of ${DURATION}s runs, load $LOAD over $CONNS connections, contestants $CONTESTANTS; results in $OUT; $(uptime)" >&2
for round in $(seq "$ROUNDS"); do
  measure "$round" direct -
  for n in $THREADS; do
    list=()
    for c in $CONTESTANTS; do list+=("$c-$n"); done
    # The order rotates by round, so no contestant always runs first.
    k=$(( (round - 1) % ${#list[@]} ))
    order=("${list[@]:$k}" "${list[@]:0:$k}")
    for c in "${order[@]}"; do measure "$round" "$c" "$round/$n"; done
  done
done

python3 - "$RUNS" "$THREADS" "$CONTESTANTS" "$LOAD" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
threads, contestants, load = sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
med = statistics.median

print(f"Load: {load}. Medians over rounds; CPU from /proc over the measured window.")
print()
print("| contestant | req/s | p50 ms | p99 ms | misroutes | errors | CPU s / 100k req | user µs / req | sys µs / req | load avg | runs |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
for name in ["direct"] + [f"{c}-{n}" for n in threads for c in contestants]:
    rs = [r for r in runs if r["contestant"] == name]
    if not rs:
        continue
    f = lambda k: med(float(r[k]) for r in rs)
    total = lambda k: sum(int(r[k]) for r in rs)
    cpu = lambda k, fmt: "n/a" if name == "direct" else format(f(k), fmt)
    loads = f'{min(float(r["load"]) for r in rs):.1f}–{max(float(r["load"]) for r in rs):.1f}'
    print(f'| {name} | {f("rps"):.0f} | {f("p50_ms"):.3f} | {f("p99_ms"):.3f} | {total("misroutes")} | {total("errors")} '
          f'| {cpu("cpu_s_per_100k", ".2f")} | {cpu("user_us", ".2f")} | {cpu("sys_us", ".2f")} | {loads} | {len(rs)} |')
print()
print("A / B in the same round (back to back), median over rounds:")
print()
print("| ratio | req/s | p99 | CPU per request | user µs per request | per-round req/s ratios |")
print("|---|---:|---:|---:|---:|---|")
wanted = [("gateway", "haproxy"), ("gateway", "floor"), ("floor", "haproxy"), ("gateway", "nginx")]
wanted += [(c, "haproxy") for c in contestants if c not in ("haproxy", "floor", "nginx", "gateway")]
for n in threads:
    for a, b in wanted:
        if a not in contestants or b not in contestants:
            continue
        pairs = []
        for key in sorted({r["pair"] for r in runs if r["pair"].endswith(f"/{n}")}):
            both = {r["contestant"]: r for r in runs if r["pair"] == key}
            if f"{a}-{n}" in both and f"{b}-{n}" in both:
                pairs.append((both[f"{a}-{n}"], both[f"{b}-{n}"]))
        if not pairs:
            continue
        ratio = lambda k: [float(x[k]) / float(y[k]) for x, y in pairs if float(y[k]) > 0]
        show = lambda v: f"{med(v):.2f}" if v else "n/a"
        rps = ratio("rps")
        print(f'| {a}-{n} / {b}-{n} | **{med(rps):.2f}** | {show(ratio("p99_ms"))} | {show(ratio("cpu_s_per_100k"))} '
              f'| {show(ratio("user_us"))} | {", ".join(f"{x:.2f}" for x in rps)} |')

PY
cat "$OUT/summary.md"
