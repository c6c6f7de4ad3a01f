#!/usr/bin/env bash
# Demo: three hello-world backends (examples/hello.rs) on 127.0.0.1:9001-9003
# behind bulb on 127.0.0.1:8080 with conf/bulb.yaml. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null; then
  echo "installing cmake (Pingora's build needs it)..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
fi
cargo build --release --locked --bin bulb --example hello
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
for i in 1 2 3; do
  target/release/examples/hello "127.0.0.1:900$i" "web$i" & pids+=($!)
done
target/release/bulb -c conf/bulb.yaml & pids+=($!)
sleep 1
cat <<TXT

bulb is up:  curl http://127.0.0.1:8080/          (answers "Hello from web1", web2, web3 in turn)
admin:       http://127.0.0.1:9901/ (dashboard)   curl http://127.0.0.1:9901/status    curl http://127.0.0.1:9901/metrics
reload:      kill -HUP ${pids[3]}                 stop: Ctrl-C

TXT
wait "${pids[3]}"
