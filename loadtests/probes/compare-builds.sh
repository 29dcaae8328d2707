#!/usr/bin/env bash
# Side by side, alternating A B A B: connect storm and first publishes to many distinct topics against two builds of
# Broker.Node (each a checkout with `dotnet build -c Release Broker.Node` done), each on its own SQLite data dir.
#   loadtests/probes/compare-builds.sh <checkout-A> <checkout-B> [rounds]
# Traffic goes to 127.0.0.1 only; every broker started here is stopped by its PID.
set -euo pipefail
a=$1; b=$2; rounds=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() {
  local dir=$1 label=$2 port data pid
  port=$(free_port); data=$(mktemp -d)
  dotnet "$dir/Broker.Node/bin/Release/net10.0/Broker.Node.dll" --Mqtt:Port="$port" --Node:DataDir="$data" --Cluster:Port=0 >"$data/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
  python3 "$here/distinct-topics.py" "$port" 500 warm >/dev/null
  echo "$label $(python3 "$here/distinct-topics.py" "$port" 5000 run)"
  python3 "$here/connect-storm.py" "$port" 300 20 clean >/dev/null
  echo "$label $(python3 "$here/connect-storm.py" "$port" 2000 20 clean)"
  echo "$label $(python3 "$here/connect-storm.py" "$port" 1000 20 persistent)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$data"
}
for _ in $(seq 1 "$rounds"); do run "$a" A; run "$b" B; done
