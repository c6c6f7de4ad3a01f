#!/usr/bin/env bash
# A/B: CPU per request of two bulb binaries on `/` keep-alive (wrk -t1 -c50),
# each pinned to CPU 1 while wrk and the nginx backends share CPU 0, runs
# interleaved. Prints the median user+system µs per request of each.
# Usage: bench/ab.sh OLD_BULB NEW_BULB [REPS=14] [SECONDS=3]   (loopback only)
# B_BACKEND=", max_conns: 1000" and B_TOP="limits: {...}" change only B's config
# (with the same binary twice: the cost of a setting); A_TOP likewise for A.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; REPS=${3:-14}; DUR=${4:-3}
W=/tmp/bulb-ab; mkdir -p "$W" /tmp/bench-www
head -c 16384 /dev/zero | tr '\0' 'x' > /tmp/bench-www/16k.txt
pids=()
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
taskset -c 0 nginx -c "$(pwd)/bench/peers/backends.nginx.conf" & pids+=($!)
declare -A port=([a]=8183 [b]=8185) bin=([a]=$A [b]=$B) pid=()
declare -A extra=([a]="" [b]="${B_BACKEND:-}") top=([a]="${A_TOP:-}" [b]="${B_TOP:-}")
for n in a b; do
  cat > "$W/$n.yaml" <<YAML
${top[$n]}
threads: 1
pid_file: $W/$n.pid
upgrade_sock: $W/$n.sock
listeners: [{address: 127.0.0.1:${port[$n]}}]
access_log: off
upstreams:
  pool:
    backends: [{address: 127.0.0.1:9101${extra[$n]}}, {address: 127.0.0.1:9102${extra[$n]}}, {address: 127.0.0.1:9103${extra[$n]}}]
YAML
  RUST_LOG=warn taskset -c 1 "${bin[$n]}" -c "$W/$n.yaml" & pids+=($!); pid[$n]=$!
done
sleep 1
T=$((1000000 / $(getconf CLK_TCK)))
: > "$W/runs.txt"
for _ in $(seq "$REPS"); do
  for n in a b; do
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/${pid[$n]}/stat")
    out=$(taskset -c 0 wrk -t1 -c50 -d"${DUR}s" "http://127.0.0.1:${port[$n]}/" 2>&1)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/${pid[$n]}/stat")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$n $reqs $((u1 - u0)) $((s1 - s0))" >> "$W/runs.txt"
  done
done
python3 - "$W/runs.txt" "$T" "$A" "$B" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
tick = int(sys.argv[2])
for k, name in (("a", sys.argv[3]), ("b", sys.argv[4])):
    r = [(int(q), int(u) * tick, int(s) * tick) for n, q, u, s in rows if n == k and int(q) > 0]
    tot = st.median((u + s) / q for q, u, s in r)
    usr = st.median(u / q for q, u, s in r)
    print(f"{name}: median {tot:.1f} us/request (user {usr:.1f}) over {len(r)} runs")
PY
