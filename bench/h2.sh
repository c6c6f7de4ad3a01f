#!/usr/bin/env bash
# HTTP/2 end to end: h2load (TLS, ALPN h2) → load balancer → three h2c
# backends (nghttpd), bulb (protocol: h2c) against nginx (grpc_pass, its
# HTTP/2 upstream) and HAProxy (server ... proto h2), one worker each.
# Usage: bench/h2.sh [SECONDS_PER_RUN=6] [REPEATS=3] [CLIENTS=50] [STREAMS=10]
# Prints req/s, mean/p99-ish latency (h2load's max is not a p99: it reports
# mean and sd) and CPU µs per request of the balancer process; medians of
# interleaved runs. BULB_BIN=/path/to/bulb runs that binary instead of
# building this tree's (say, an older one, for before/after).
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-6}; REPS=${2:-3}; CLIENTS=${3:-50}; STREAMS=${4:-10}
W=/tmp/bulb-bench-h2; mkdir -p "$W/www"
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v nghttpd >/dev/null || need+=(nghttp2-server)
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked --bin bulb 2>&1 | tail -1
ulimit -n 65536 2>/dev/null || true
printf 'hello from h2c\n' > "$W/www/index.html"
[ -f "$W/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 30 -subj /CN=localhost -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" > "$W/haproxy.pem"

pids=()
cleanup() {
  kill -INT "${pids[@]}" 2>/dev/null || true
  # nghttpd ignores SIGINT.
  sleep 0.5; kill -TERM "${pids[@]}" 2>/dev/null || true
  [ -f "$W/haproxy.pid" ] && kill "$(cat "$W/haproxy.pid")" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for p in 9201 9202 9203; do
  nghttpd --no-tls -d "$W/www" "$p" >/dev/null 2>&1 & pids+=($!)
done
cat > "$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes an HTTP/2 connection after 1000 requests by default (GOAWAY;
  # h2load does not reconnect, and in-flight streams fail).
  keepalive_requests 1000000;
  upstream h2c { server 127.0.0.1:9201; server 127.0.0.1:9202; server 127.0.0.1:9203; keepalive 32; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:8281 ssl http2;
    ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
    location / { grpc_pass grpc://h2c; }
  }
}
CONF
nginx -c "$W/nginx.conf"
cat > "$W/haproxy.cfg" <<CONF
global
  nbthread 1
  pidfile $W/haproxy.pid
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:8282 ssl crt $W/haproxy.pem alpn h2,http/1.1
  default_backend be
backend be
  balance roundrobin
  server a 127.0.0.1:9201 proto h2
  server b 127.0.0.1:9202 proto h2
  server c 127.0.0.1:9203 proto h2
CONF
haproxy -f "$W/haproxy.cfg" -D
cat > "$W/bulb.yaml" <<YAML
threads: 1
pid_file: $W/bulb.pid
upgrade_sock: $W/bulb.sock
listeners: [{address: 127.0.0.1:8283, tls: {cert: $W/cert.pem, key: $W/key.pem}}]
access_log: off
upstreams:
  h2c:
    protocol: h2c
    backends: [{address: 127.0.0.1:9201}, {address: 127.0.0.1:9202}, {address: 127.0.0.1:9203}]
YAML
RUST_LOG=warn "${BULB_BIN:-target/release/bulb}" -c "$W/bulb.yaml" & pids+=($!); BULB=$!
for p in 9201 8281 8282 8283; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
sleep 1
nginx_worker=$(pgrep -P "$(cat "$W/nginx.pid")" | head -1)
declare -A port=([nginx]=8281 [haproxy]=8282 [bulb]=8283)
declare -A pid=([nginx]=$nginx_worker [haproxy]=$(cat "$W/haproxy.pid") [bulb]=$BULB)
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
RES="$W/results.txt"; : > "$RES"
for r in $(seq "$REPS"); do
  for s in nginx haproxy bulb; do
    c0=$(cpu_ticks "${pid[$s]}")
    out=$(h2load -c "$CLIENTS" -m "$STREAMS" -D "$DUR" "https://127.0.0.1:${port[$s]}/index.html" 2>&1)
    c1=$(cpu_ticks "${pid[$s]}")
    ok=$(echo "$out" | awk '/^requests:/ {print $8}')
    fail=$(echo "$out" | awk '/^requests:/ {print $10}')
    rps=$(echo "$out" | awk '/^finished in/ {gsub(/,/,""); print $4}')
    mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="$ok" -v t="$TICK_US" 'BEGIN{print (n>0)?(b-a)*t/n:0}')
    echo "$s $rps $mean $fail $cpu" >> "$RES"
    echo "  run $r $s: $rps req/s, mean $mean, failed $fail, cpu/req ${cpu}us" >&2
  done
done
python3 - "$RES" <<'PY'
import sys, statistics as st
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)
rows = {}
for l in open(sys.argv[1]):
    s, rps, mean, fail, cpu = l.split()
    rows.setdefault(s, []).append((float(rps), ms(mean), int(fail), float(cpu)))
print(f"\n{'h2 TLS → h2c':<14}{'req/s':>10}{'mean ms':>9}{'failed':>8}{'cpu us/req':>12}")
med = {}
for s, v in rows.items():
    med[s] = tuple(st.median(x[i] for x in v) for i in range(4))
    r, m, f, c = med[s]
    print(f"{s:<14}{r:>10.0f}{m:>9.2f}{sum(x[2] for x in v):>8}{c:>12.1f}")
b = med.get("bulb")
if b:
    print("bulb req/s = " + ", ".join(f"{b[0]/med[s][0]:.2f}x {s}" for s in ("nginx", "haproxy") if s in med)
          + "; cpu/req = " + ", ".join(f"{b[3]/med[s][3]:.2f}x {s}" for s in ("nginx", "haproxy") if s in med))
PY
