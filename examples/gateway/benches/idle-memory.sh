#!/usr/bin/env bash
# Memory per idle keep-alive client connection (issue 21): COUNT client
# connections (2,000 by default), each left open after one request, and
# the proxy's VmRSS before and after, for the gateway and for HAProxy, in
# the same run.
#
#   bash examples/gateway/benches/idle-memory.sh      (from the repository root)
#   COUNT=2000 ROUNDS=2 CONTESTANTS="gateway haproxy floor" bash examples/gateway/benches/idle-memory.sh
#
# The same backends and contestant configurations as race.sh
# (contestants.sh), one thread each. Per contestant and round: start it,
# one warm-up request on a connection of its own (closed), VmRSS (before);
# then COUNT connections, one after the other, each sending `GET /get`
# without a cookie and reading the whole answer, all kept open; VmRSS again
# once it has not grown for 0.5 s (after); every connection is checked to
# be still open (not closed by the proxy) at that point. KiB per connection
# = (after - before) / COUNT. Then the connections are closed and VmRSS is
# read once more (after close: what the proxy gives back). A contestant
# that refuses a connection's request (a non-200 answer, a reset) is
# recorded as failed at that connection, and the run goes on.
# GATEWAY_FLAGS adds flags to the gateway contestants (e.g.
# `--max-upstream-connections 4096`: under `--http-reuse safe` every idle
# client connection keeps its upstream socket). The order of the
# contestants rotates by round. Results go to $OUT (default
# target/idle-memory): runs.tsv and summary.md. Everything is on
# 127.0.0.1; every wait is bounded; processes are stopped by PID.
set -euo pipefail

COUNT=${COUNT:-2000}
ROUNDS=${ROUNDS:-2}
CONTESTANTS=${CONTESTANTS:-"gateway haproxy"}
OUT=${OUT:-target/idle-memory}
DURATION=1 # contestants.sh checks it; no timed load here.
BASE_PORT=${BASE_PORT:-19300}

SCRIPT=idle-memory.sh
TOOLS="haproxy nginx python3 cargo"
if [ "$COUNT" -lt 1 ] || [ "$COUNT" -gt 8000 ]; then
  echo "$SCRIPT: COUNT must be 1..8000" >&2
  exit 2
fi
# The client holds COUNT sockets, the proxy COUNT and its upstream ones.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * COUNT + 200)) ]; then
  echo "$SCRIPT: need ulimit -n >= $((2 * COUNT + 200)), have $(ulimit -n)" >&2
  exit 2
fi
source "$(dirname "$0")/common.sh"
source examples/gateway/benches/contestants.sh

printf 'round\tcontestant\tbefore_kib\tafter_kib\tclosed_kib\tconnections\tkib_per_conn\tload\terror\n' >"$OUT/runs.tsv"
echo "idle-memory: $COUNT connections, $ROUNDS rounds, contestants $CONTESTANTS; $(uptime)" >&2
for round in $(seq "$ROUNDS"); do
  list=($CONTESTANTS)
  k=$(( (round - 1) % ${#list[@]} ))
  for c in "${list[@]:$k}" "${list[@]:0:$k}"; do
    wait_port_free "$PROXY_PORT"
    pid=$(start "$c-1")
    PIDS+=("$pid")
    wait_port "$PROXY_PORT"
    timeout 300 python3 - "$pid" "$PROXY_PORT" "$COUNT" >"$WORK/idle.json" <<'PY'
import http.client, json, select, sys, time
pid, port, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS")

def settled(deadline_s=10):
    # VmRSS once it has not grown for 0.5 s (at most deadline_s seconds).
    last, since, end = rss(), time.monotonic(), time.monotonic() + deadline_s
    while time.monotonic() < end:
        time.sleep(0.1)
        now = rss()
        if now > last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return last

class Refused(Exception):
    pass

def one():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/get")
    r = c.getresponse()
    r.read()
    if r.status != 200:
        raise Refused(f"status {r.status}")
    return c

one().close()
before = settled()
conns = []
try:
    for _ in range(count):
        conns.append(one())
except (Refused, OSError) as e:
    # Recorded, not fatal: the other contestants still run.
    print(json.dumps({"error": f"connection {len(conns) + 1} of {count}: {e}"}))
    sys.exit(0)
after = settled()
# Still open: a socket the proxy closed would be readable (EOF).
# (poll, not select: the descriptors go past 1024.)
poll = select.poll()
socks = [c.sock for c in conns if c.sock is not None]
for s in socks:
    poll.register(s, select.POLLIN)
closed = len(conns) - len(socks) + len(poll.poll(0))
for c in conns:
    c.close()
gone = settled()
print(json.dumps({"before": before, "after": after, "closed_after": gone, "open": count - closed}))
PY
    stop "$pid"
    python3 - "$round" "$c" "$COUNT" "$WORK/idle.json" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUT/runs.tsv" <<'PY'
import json, sys
round_, name, count, path, load = sys.argv[1:6]
r = json.load(open(path))
if "error" in r:
    print(f'{round_}\t{name}\t\t\t\t0\t\t{load}\t{r["error"]}')
    sys.exit(0)
per = (r["after"] - r["before"]) / int(count)
print(f'{round_}\t{name}\t{r["before"]}\t{r["after"]}\t{r["closed_after"]}\t{r["open"]}\t{per:.2f}\t{load}\t')
PY
    tail -1 "$OUT/runs.tsv" >&2
  done
done

python3 - "$OUT/runs.tsv" "$CONTESTANTS" "$COUNT" >"$OUT/summary.md" <<'PY'
import csv, statistics, sys
runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
names, count = sys.argv[2].split(), sys.argv[3]
print(f"{count} idle keep-alive client connections, one request each; VmRSS KiB, median over rounds.")
print()
print("| contestant | before | after | after close | still open | KiB per connection | per-round KiB per connection |")
print("|---|---:|---:|---:|---:|---:|---|")
for n in names:
    failed = [r for r in runs if r["contestant"] == n and r["error"]]
    for r in failed:
        print(f'| {n}-1 | failed in round {r["round"]}: {r["error"]} | | | | | |')
    rs = [r for r in runs if r["contestant"] == n and not r["error"]]
    if not rs:
        continue
    m = lambda k: statistics.median(float(r[k]) for r in rs)
    each = ", ".join(r["kib_per_conn"] for r in rs)
    print(f'| {n}-1 | {m("before_kib"):.0f} | {m("after_kib"):.0f} | {m("closed_kib"):.0f} | {min(int(r["connections"]) for r in rs)} | **{m("kib_per_conn"):.2f}** | {each} |')
PY
cat "$OUT/summary.md"
