#!/usr/bin/env bash
# Side-by-side benchmark: bulb vs nginx vs HAProxy vs Caddy vs the Pingora floor
# (examples/pingora_floor.rs) and the tokio floor (examples/tokio_floor.rs: a
# hand-written proxy on tokio alone), one worker each, over three nginx static backends.
# Usage: bench/run.sh [SECONDS_PER_RUN=6] [REPEATS=3] [IDLE_CONNS=5000]   (then bench/h2.sh; H2=0 skips it)
# BULB_BASE=/path/to/older/bulb adds that binary as system "base" (same config, port 8085),
# for before/after comparisons in one run.
# Loopback only. Prints req/s, p50/p99 latency and errors per system and workload
# (medians of interleaved runs), bulb's ratios, and RSS with idle keep-alive clients.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-6}; REPS=${2:-3}; IDLE=${3:-5000}
B=$(pwd)/bench; W=/tmp/bulb-bench; mkdir -p "$W" /tmp/bench-www
need=()
for t in nginx haproxy caddy wrk python3 cmake; do command -v $t >/dev/null || need+=("$t"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
head -c 16384 /dev/zero | tr '\0' 'x' > /tmp/bench-www/16k.txt
# BULB_FEATURES=mimalloc bench/run.sh   measures the mimalloc build.
cargo build --release --locked --bin bulb --example pingora_floor --example tokio_floor ${BULB_FEATURES:+--features "$BULB_FEATURES"} 2>&1 | tail -1
ulimit -n 65536 2>/dev/null || true

pids=()
cleanup() {
  # SIGINT: fast stop (the Pingora floor would otherwise wait out Pingora's 300 s grace period).
  kill -INT "${pids[@]}" 2>/dev/null || true
  # The tokio floor has no signal handler, and a script's background job ignores SIGINT.
  [ -n "${TOKIO:-}" ] && kill -TERM "$TOKIO" 2>/dev/null || true
  [ -f /tmp/bench-haproxy.pid ] && kill "$(cat /tmp/bench-haproxy.pid)" 2>/dev/null || true
  [ -n "${CADDY:-}" ] && kill -TERM "$CADDY" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

nginx -c "$B/peers/backends.nginx.conf" & pids+=($!)
nginx -c "$B/peers/lb.nginx.conf" & pids+=($!); NGINX_MASTER=$!
haproxy -f "$B/peers/lb.haproxy.cfg" -D -p /tmp/bench-haproxy.pid
# Caddy: one worker thread's worth of Go scheduler, like the others' one worker.
GOMAXPROCS=1 caddy run --adapter caddyfile --config "$B/peers/lb.Caddyfile" > "$W/caddy.log" 2>&1 & CADDY=$!
cat > "$W/bulb.yaml" <<YAML
threads: 1
pid_file: $W/bulb.pid
upgrade_sock: $W/bulb.sock
listeners: [{address: 127.0.0.1:8083}]
access_log: ${BULB_ACCESS_LOG:-off}
upstreams:
  pool:
    algorithm: round_robin
    backends: [{address: 127.0.0.1:9101}, {address: 127.0.0.1:9102}, {address: 127.0.0.1:9103}]
YAML
RUST_LOG=warn target/release/bulb -c "$W/bulb.yaml" & pids+=($!); BULB=$!
BASE=
if [ -n "${BULB_BASE:-}" ]; then
  sed -e 's/8083/8085/' -e 's/bulb\.pid/base.pid/' -e 's/bulb\.sock/base.sock/' "$W/bulb.yaml" > "$W/base.yaml"
  RUST_LOG=warn "$BULB_BASE" -c "$W/base.yaml" & pids+=($!); BASE=$!
fi
RUST_LOG=warn target/release/examples/pingora_floor 127.0.0.1:8084 127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9103 & pids+=($!); FLOOR=$!
target/release/examples/tokio_floor 127.0.0.1:8086 127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9103 & pids+=($!); TOKIO=$!
for p in 9101 8081 8082 8083 8084 8086 8087 ${BASE:+8085}; do
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done
sleep 1

# SYSTEMS="bulb" / WORKLOADS="/|keep-alive" narrow a run; BULB_ACCESS_LOG=/path turns bulb's access log on.
read -r -a systems <<< "${SYSTEMS:-nginx haproxy caddy bulb floor tokio${BASE:+ base}}"
declare -A port=([nginx]=8081 [haproxy]=8082 [caddy]=8087 [bulb]=8083 [floor]=8084 [tokio]=8086 [base]=8085)
read -r -a workloads <<< "${WORKLOADS:-/|keep-alive /16k|keep-alive /|close}"
RES="$W/results.txt"; : > "$RES"

to_ms() { # wrk latency like 512.00us / 1.20ms / 2.00s -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v+0} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000} else print v }'
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU time (user, system) of a process in clock ticks, all threads.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
nginx_worker=$(pgrep -P "$NGINX_MASTER" | head -1)
haproxy_pid=$(cat /tmp/bench-haproxy.pid)
declare -A mempid=([nginx]=$nginx_worker [haproxy]=$haproxy_pid [caddy]=$CADDY [bulb]=$BULB [floor]=$FLOOR [tokio]=$TOKIO [base]=$BASE)

for wl in "${workloads[@]}"; do
  path=${wl%%|*}; mode=${wl##*|}
  hdr=(); [ "$mode" = close ] && hdr=(-H "Connection: close")
  for r in $(seq "$REPS"); do
    for s in "${systems[@]}"; do
      read -r u0 s0 < <(cpu_ticks "${mempid[$s]}")
      out=$(wrk -t1 -c50 -d"${DUR}s" --latency "${hdr[@]}" "http://127.0.0.1:${port[$s]}$path" 2>&1)
      read -r u1 s1 < <(cpu_ticks "${mempid[$s]}")
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      usr=$(awk -v a="$u0" -v b="$u1" -v n="$reqs" -v t="$TICK_US" 'BEGIN{print (n>0)?(b-a)*t/n:0}')
      sys=$(awk -v a="$s0" -v b="$s1" -v n="$reqs" -v t="$TICK_US" 'BEGIN{print (n>0)?(b-a)*t/n:0}')
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
      p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
      errs=$(echo "$out" | awk '/Non-2xx/ {e+=$NF} /Socket errors/ {gsub(/,/,""); e+=$4+$6+$8+$10} END {print e+0}')
      echo "$path $mode $s $rps $p50 $p99 $errs $usr $sys" >> "$RES"
      echo "  $path ($mode) run $r $s: $rps req/s p50 ${p50}ms p99 ${p99}ms errors $errs cpu/req ${usr}+${sys}us" >&2
    done
  done
done

MEM="$W/mem.txt"; : > "$MEM"
for s in "${systems[@]}"; do
  before=$(rss_kb "${mempid[$s]}")
  [ "$IDLE" -gt 0 ] || continue
  coproc IDLEC { python3 "$B/idle_conns.py" 127.0.0.1 "${port[$s]}" "$IDLE"; }
  read -r ready n <&"${IDLEC[0]}" || true
  sleep 1
  after=$(rss_kb "${mempid[$s]}")
  echo "$s $before $after ${n:-0}" >> "$MEM"
  eval "exec ${IDLEC[1]}>&-"; wait "$IDLEC_PID" 2>/dev/null || true
  sleep 1
done

python3 - "$RES" "$MEM" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
res = {}
for path, mode, s, rps, p50, p99, errs, usr, sys_ in rows:
    res.setdefault((path, mode), {}).setdefault(s, []).append((float(rps or 0), float(p50 or 0), float(p99 or 0), int(float(errs or 0)), float(usr) + float(sys_), float(usr)))
systems = ["nginx", "haproxy", "caddy", "bulb", "floor", "tokio", "base"]
print(f"\n{'workload':<22}{'system':<9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'cpu us/req':>12}{'(user)':>8}")
for (path, mode), by in res.items():
    med = {s: (st.median(x[0] for x in v), st.median(x[1] for x in v), st.median(x[2] for x in v), sum(x[3] for x in v), st.median(x[4] for x in v), st.median(x[5] for x in v)) for s, v in by.items()}
    for s in systems:
        if s in med:
            r, a, b, e, c, u = med[s]
            print(f"{path+' '+mode:<22}{s:<9}{r:>10.0f}{a:>9.2f}{b:>9.2f}{e:>8}{c:>12.1f}{u:>8.1f}")
    b = med.get("bulb")
    if b:
        ratios = ", ".join(f"{b[0]/med[s][0]:.2f}x {s}" for s in systems if s != "bulb" and med.get(s) and med[s][0] > 0)
        p99 = ", ".join(f"{b[2]/med[s][2]:.2f}x {s}" for s in ("nginx", "haproxy", "caddy") if med.get(s) and med[s][2] > 0)
        cpu = ", ".join(f"{b[4]/med[s][4]:.2f}x {s}" for s in systems if s != "bulb" and med.get(s) and med[s][4] > 0)
        print(f"{'':<22}bulb req/s = {ratios}; bulb p99 = {p99}; bulb cpu/req = {cpu}")
print(f"\n{'idle keep-alive clients':<24}{'system':<9}{'RSS before':>12}{'RSS after':>12}{'per conn':>10}")
for l in open(sys.argv[2]):
    s, before, after, n = l.split()
    n = int(n)
    per = (int(after) - int(before)) / n if n else float('nan')
    print(f"{n:<24}{s:<9}{int(before)/1024:>10.1f}Mi{int(after)/1024:>10.1f}Mi{per:>8.1f}KB")
PY

# The HTTP/2 workload (TLS h2 clients → h2c backends): H2=0 skips it.
if [ "${H2:-1}" = 1 ]; then
  cleanup; trap - EXIT INT TERM
  bash "$B/h2.sh" "$DUR" "$REPS"
fi
