#!/usr/bin/env bash
# Layer 4 side by side: bulb's tcp listener vs nginx's stream module vs HAProxy
# `mode tcp` (splice-auto), one worker each, over the same backends.
#   bulk:     one iperf3 stream through the proxy (Gbit/s)
#   connect:  wrk with `Connection: close` to an nginx backend through the
#             proxy: one short TCP session per request (sessions/s)
#   idle:     RSS per idle session (bench/idle_conns.py)
# Usage: bench/tcp.sh [SECONDS=5] [REPEATS=3] [IDLE=5000]   (loopback only)
# BULB_BASE=/path/to/older/bulb adds that binary as system "base" (ports 8481/8482).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5}; REPS=${2:-3}; IDLE=${3:-5000}
B=$(pwd)/bench; W=/tmp/bulb-tcp-bench; mkdir -p "$W" /tmp/bench-www
need=()
for t in nginx haproxy wrk iperf3 python3; do command -v $t >/dev/null || need+=("$t"); done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
head -c 16384 /dev/zero | tr '\0' 'x' > /tmp/bench-www/16k.txt
cargo build --release --locked --bin bulb 2>&1 | tail -1
ulimit -n 65536 2>/dev/null || true

pids=()
cleanup() {
  kill -INT "${pids[@]}" 2>/dev/null || true
  [ -f "$W/haproxy.pid" ] && kill "$(cat "$W/haproxy.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cat > "$W/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 30000; }
stream {
  server { listen 127.0.0.1:8181; proxy_pass 127.0.0.1:9101; }
  server { listen 127.0.0.1:8182; proxy_pass 127.0.0.1:5201; }
}
EOF
cat > "$W/haproxy.cfg" <<EOF
global
  maxconn 7000
  nbthread 1
defaults
  mode tcp
  option splice-auto
  timeout connect 2s
  timeout client 60s
  timeout server 60s
listen http
  bind 127.0.0.1:8281
  server s1 127.0.0.1:9101
listen iperf
  bind 127.0.0.1:8282
  server s1 127.0.0.1:5201
EOF
cat > "$W/bulb.yaml" <<EOF
threads: 1
pid_file: $W/bulb.pid
upgrade_sock: $W/bulb.sock
access_log: off
listeners:
  - {address: 127.0.0.1:8381, protocol: tcp, upstream: http}
  - {address: 127.0.0.1:8382, protocol: tcp, upstream: iperf}
upstreams:
  http: {backends: [{address: 127.0.0.1:9101}]}
  iperf: {backends: [{address: 127.0.0.1:5201}]}
EOF

nginx -c "$B/peers/backends.nginx.conf" & pids+=($!)
iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 & pids+=($!)
nginx -c "$W/nginx.conf" & pids+=($!); NGINX_MASTER=$!
haproxy -f "$W/haproxy.cfg" -D -p "$W/haproxy.pid"
RUST_LOG=warn target/release/bulb -c "$W/bulb.yaml" & pids+=($!); BULB=$!
BASE=
if [ -n "${BULB_BASE:-}" ]; then
  sed -e 's/83\([0-9]\)/84\1/g' -e 's/bulb\.pid/base.pid/' -e 's/bulb\.sock/base.sock/' "$W/bulb.yaml" > "$W/base.yaml"
  RUST_LOG=warn "$BULB_BASE" -c "$W/base.yaml" & pids+=($!); BASE=$!
fi
for p in 9101 5201 8181 8281 8381 ${BASE:+8481}; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
sleep 1
nginx_worker=$(pgrep -P "$NGINX_MASTER" | head -1)
declare -A base=([nginx]=8180 [haproxy]=8280 [bulb]=8380 [base]=8480)
declare -A pid=([nginx]=$nginx_worker [haproxy]=$(cat "$W/haproxy.pid") [bulb]=$BULB [base]=$BASE)
systems=(nginx haproxy bulb ${BASE:+base})
RES="$W/results.txt"; : > "$RES"
# CPU time (user + system) of a process in clock ticks, all threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_MS=$((1000 / $(getconf CLK_TCK)))
for _ in $(seq "$REPS"); do
  for s in "${systems[@]}"; do
    t0=$(cpu_ticks "${pid[$s]}")
    gbps=$(iperf3 -c 127.0.0.1 -p $((base[$s] + 2)) -t "$DUR" -J 2>/dev/null \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' || echo 0)
    t1=$(cpu_ticks "${pid[$s]}")
    cps=$(wrk -t1 -c50 -d"${DUR}s" -H "Connection: close" "http://127.0.0.1:$((base[$s] + 1))/" 2>&1 \
      | awk '/Requests\/sec/ {print $2}')
    t2=$(cpu_ticks "${pid[$s]}")
    # The proxy's CPU per gigabyte relayed and per short session: what the
    # relay costs, steadier than the throughput of one stream on a busy machine.
    ms_gb=$(awk -v t=$((t1 - t0)) -v g="$gbps" -v d="$DUR" -v m="$TICK_MS" 'BEGIN{print (g>0)?t*m/(g*d/8):0}')
    us_s=$(awk -v t=$((t2 - t1)) -v c="${cps:-0}" -v d="$DUR" -v m="$TICK_MS" 'BEGIN{print (c>0)?t*m*1000/(c*d):0}')
    echo "$s $gbps ${cps:-0} $ms_gb $us_s" >> "$RES"
    echo "  $s: bulk ${gbps} Gbit/s (${ms_gb} CPU ms/GB), short sessions ${cps:-0}/s (${us_s} CPU us each)" >&2
  done
done
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
MEM="$W/mem.txt"; : > "$MEM"
for s in "${systems[@]}"; do
  [ "$IDLE" -gt 0 ] || continue
  before=$(rss_kb "${pid[$s]}")
  coproc IDLEC { python3 "$B/idle_conns.py" 127.0.0.1 $((base[$s] + 1)) "$IDLE"; }
  read -r _ready n <&"${IDLEC[0]}" || true
  sleep 1
  after=$(rss_kb "${pid[$s]}")
  echo "$s $before $after ${n:-0}" >> "$MEM"
  eval "exec ${IDLEC[1]}>&-"; wait "$IDLEC_PID" 2>/dev/null || true
  sleep 1
done
python3 - "$RES" "$MEM" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for s in ("nginx", "haproxy", "bulb", "base"):
    r = [x for x in rows if x[0] == s]
    if not r:
        continue
    med[s] = tuple(st.median(float(x[i]) for x in r) for i in (1, 2, 3, 4))
print(f"\n{'system':<9}{'bulk Gbit/s':>13}{'CPU ms/GB':>11}{'sessions/s':>12}{'CPU us/session':>16}")
for s, (g, c, mg, us) in med.items():
    print(f"{s:<9}{g:>13.2f}{mg:>11.1f}{c:>12.0f}{us:>16.1f}")
b = med["bulb"]
print(f"bulb bulk = {b[0]/med['nginx'][0]:.2f}x nginx, {b[0]/med['haproxy'][0]:.2f}x haproxy; "
      f"sessions/s = {b[1]/med['nginx'][1]:.2f}x nginx, {b[1]/med['haproxy'][1]:.2f}x haproxy; "
      f"CPU/GB = {b[2]/med['nginx'][2]:.2f}x nginx, {b[2]/med['haproxy'][2]:.2f}x haproxy; "
      f"CPU/session = {b[3]/med['nginx'][3]:.2f}x nginx, {b[3]/med['haproxy'][3]:.2f}x haproxy")
print(f"\n{'idle sessions':<15}{'system':<9}{'per session':>12}")
for l in open(sys.argv[2]):
    s, before, after, n = l.split()
    n = int(n)
    if n:
        print(f"{n:<15}{s:<9}{(int(after) - int(before)) / n:>10.1f}KB")
PY
