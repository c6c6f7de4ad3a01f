#!/usr/bin/env bash
# Heap allocations per request and heap per idle keep-alive client, counted (not timed): a
# steady number on a machine whose timings drift. Runs a system-allocator build of bulb under
# heaptrack against the three nginx backends, sends `/` keep-alive with wrk, then prints
# allocations per request and the top allocating call sites.
# Usage: [CONNS=10] bench/allocs.sh [SECONDS=3] [TOP=15]   (loopback only; installs heaptrack if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-3}; TOP=${2:-15}; CONNS=${CONNS:-10}
W=/tmp/bulb-allocs; mkdir -p "$W" /tmp/bench-www
need=()
for t in nginx wrk heaptrack; do command -v $t >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The system allocator: heaptrack sees every malloc (mimalloc would hide its own pages).
# Line tables name the inlined frames where most allocations sit.
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --locked --no-default-features --bin bulb --target-dir target/sysalloc 2>&1 | tail -1
pids=()
cleanup() { kill -INT "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
nginx -c "$(pwd)/bench/peers/backends.nginx.conf" & pids+=($!)
cat > "$W/bulb.yaml" <<YAML
threads: 1
pid_file: $W/bulb.pid
upgrade_sock: $W/bulb.sock
listeners: [{address: 127.0.0.1:8086}]
access_log: off
upstreams:
  pool:
    backends: [{address: 127.0.0.1:9101}, {address: 127.0.0.1:9102}, {address: 127.0.0.1:9103}]
YAML
rm -f "$W"/heap.*
RUST_LOG=warn heaptrack -o "$W/heap" target/sysalloc/release/bulb -c "$W/bulb.yaml" > "$W/heaptrack.out" 2>&1 &
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/8086) 2>/dev/null && break; sleep 0.1; done
sleep 1
reqs=$(wrk -t1 -c"$CONNS" -d"${DUR}s" http://127.0.0.1:8086/ | awk '/requests in/ {print $1}')
# SIGINT to bulb itself (heaptrack runs it as a child of its wrapper).
pkill -INT -f "sysalloc/release/bulb -c $W/bulb.yaml"
for _ in $(seq 100); do grep -q "allocations:" "$W/heaptrack.out" 2>/dev/null && break; sleep 0.2; done
allocs=$(awk '/allocations:/ && !/leaked|temporary/ {print $2; exit}' "$W/heaptrack.out")
echo "requests: $reqs; allocations: $allocs (start-up included); per request: $((allocs / reqs))"
heaptrack_print -f "$W"/heap.* --print-peaks 0 --print-allocators 1 --print-temporary 0 \
  --print-leaks 0 --peak-limit 40 --sub-peak-limit 40 2>/dev/null > "$W/sites.txt"
# Each call site that allocates at least once per 20 requests, per request, with the first
# frames of bulb's or the vendored crates' code that lead to it (inner first).
python3 - "$W/sites.txt" "$reqs" "$TOP" <<'PY'
import os, re, sys
text, reqs, top = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3])
rows = []
for block in re.split(r"\n(?=\s*\d+ calls with)", text):
    m = re.match(r"\s*(\d+) calls with", block)
    if not m or int(m.group(1)) < reqs / 20:
        continue
    # Paths of this repository only (a dependency's frames name their own `src/...`).
    at = [a for a in re.findall(r"at (\S+:\d+)", block)
          if a.startswith(("src/", "vendor/")) and os.path.exists(a.rsplit(":", 1)[0])]
    rows.append((int(m.group(1)) / reqs, " <- ".join(at[:3]) or "(outside bulb's code)"))
for n, where in sorted(rows, reverse=True)[:top]:
    print(f"{n:8.2f} per request  {where}")
PY
