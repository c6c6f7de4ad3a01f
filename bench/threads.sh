#!/usr/bin/env bash
# Scaling to two worker threads on a 2-core machine: nginx with 1 and 2 workers, bulb with
# 1 and 2 threads (Pingora's one shared listening socket, with one or two accept tasks, with
# and without work stealing), and the Pingora floor with 2 threads on one shared socket vs one
# SO_REUSEPORT socket per thread. wrk (-t2 -c100) and the nginx backends are pinned to both
# cores with taskset; the load balancers are not pinned. Prints, per system, the median req/s,
# p99 and CPU µs per request of interleaved runs, and each 2-worker system's req/s against its
# 1-worker self.
# Usage: bench/threads.sh [SECONDS=5] [REPEATS=3]   (loopback only; needs a release build:
# cargo build --release --bin bulb --example pingora_floor, which bench/run.sh also does)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}; REPS=${2:-3}
B=$(pwd)/bench; W=/tmp/bulb-threads; mkdir -p "$W" /tmp/bench-www
head -c 16384 /dev/zero | tr '\0' 'x' > /tmp/bench-www/16k.txt
cargo build --release --locked --bin bulb --example pingora_floor 2>&1 | tail -1
pids=()
cleanup() { kill -INT "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

taskset -c 0,1 nginx -c "$B/peers/backends.nginx.conf" & pids+=($!)
declare -A port=() mempid=()
n=0
for w in 1 2; do
  sed -e "s/worker_processes 1;/worker_processes $w;/" -e "s/8081/810$w/" \
    -e "s|bench-lb-nginx|bench-lb-nginx$w|g" "$B/peers/lb.nginx.conf" > "$W/nginx$w.conf"
  nginx -c "$W/nginx$w.conf" & pids+=($!); port[nginx-w$w]=810$w; mempid[nginx-w$w]=$!
done
bulb() { # name port extra-yaml
  cat > "$W/$1.yaml" <<YAML
$3
pid_file: $W/$1.pid
upgrade_sock: $W/$1.sock
listeners: [{address: 127.0.0.1:$2}]
access_log: off
upstreams:
  pool:
    backends: [{address: 127.0.0.1:9101}, {address: 127.0.0.1:9102}, {address: 127.0.0.1:9103}]
YAML
  RUST_LOG=warn target/release/bulb -c "$W/$1.yaml" & pids+=($!); port[$1]=$2; mempid[$1]=$!
}
bulb bulb-t1 8111 "threads: 1"
bulb bulb-t2 8112 "threads: 2"
bulb bulb-t2-tasks2 8113 "threads: 2
listener_tasks_per_fd: 2"
bulb bulb-t2-nosteal 8114 "threads: 2
work_stealing: false
listener_tasks_per_fd: 2"
floor() { # name port env...
  local name=$1 p=$2; shift 2
  env "$@" RUST_LOG=warn target/release/examples/pingora_floor "127.0.0.1:$p" \
    127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9103 & pids+=($!); port[$name]=$p; mempid[$name]=$!
}
floor floor-t1 8121 FLOOR_THREADS=1
floor floor-t2 8122 FLOOR_THREADS=2
floor floor-t2-reuseport 8123 FLOOR_THREADS=2 FLOOR_REUSEPORT=1
for p in 9101 "${port[@]}"; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
sleep 1
# nginx: the CPU of its workers (children of the master).
cpu_us() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $((t * 1000000 / $(getconf CLK_TCK)))
}
systems=(nginx-w1 nginx-w2 bulb-t1 bulb-t2 bulb-t2-tasks2 bulb-t2-nosteal floor-t1 floor-t2 floor-t2-reuseport)
RES="$W/results.txt"; : > "$RES"
for r in $(seq "$REPS"); do
  for s in "${systems[@]}"; do
    c0=$(cpu_us "${mempid[$s]}")
    out=$(taskset -c 0,1 wrk -t2 -c100 -d"${DUR}s" --latency "http://127.0.0.1:${port[$s]}/" 2>&1)
    c1=$(cpu_us "${mempid[$s]}")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) sub(/ms/,"",v); else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}')
    errs=$(echo "$out" | awk '/Non-2xx/ {e+=$NF} /Socket errors/ {gsub(/,/,""); e+=$4+$6+$8+$10} END {print e+0}')
    echo "$s $rps $p99 $(( (c1 - c0) / (reqs > 0 ? reqs : 1) )) $errs" >> "$RES"
    echo "  run $r $s: $rps req/s p99 ${p99}ms cpu/req $(( (c1 - c0) / (reqs > 0 ? reqs : 1) ))us errors $errs" >&2
  done
done
python3 - "$RES" <<'PY'
import sys, statistics as st
rows = {}
for l in open(sys.argv[1]):
    s, rps, p99, cpu, errs = l.split()
    rows.setdefault(s, []).append((float(rps), float(p99), float(cpu), int(errs)))
med = {s: (st.median(x[0] for x in v), st.median(x[1] for x in v), st.median(x[2] for x in v), sum(x[3] for x in v)) for s, v in rows.items()}
print(f"\n{'system':<22}{'req/s':>10}{'p99 ms':>9}{'cpu us/req':>12}{'errors':>8}{'vs 1 worker':>13}")
for s, (rps, p99, cpu, e) in med.items():
    one = s.split("-")[0] + ("-w1" if s.startswith("nginx") else "-t1")
    ratio = f"{rps / med[one][0]:.2f}x" if one in med and one != s else ""
    print(f"{s:<22}{rps:>10.0f}{p99:>9.2f}{cpu:>12.1f}{e:>8}{ratio:>13}")
b, n = med.get("bulb-t2"), med.get("nginx-w2")
if b and n:
    print(f"\nbulb (2 threads) / nginx (2 workers): req/s {b[0]/n[0]:.2f}x, cpu/req {b[2]/n[2]:.2f}x, p99 {b[1]/n[1]:.2f}x")
PY
