#!/usr/bin/env bash
# One node, clean sessions: the live-session path (Sessions:CleanSessionsOnConnectionNode=true) against the
# session-entity path (false), one Broker.Node each on free ports of 127.0.0.1, same build, alternating, ROUNDS rounds
# [2] of the load runner's point-to-point (50 pairs, QoS 0 and 1, 10 s) and fan-out (1 to 100, QoS 0). Prints rate,
# broker CPU-s per 100k delivered (utime+stime from /proc) and latency per run. Stops both nodes (by PID) at exit.
# Requires a Release build (dotnet build -c Release Cluster.sln).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
node_dll="$repo/Broker.Node/bin/Release/net10.0/Broker.Node.dll"
runner="$repo/loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"
tck=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat"); echo $((f[11] + f[12])); }
start() { # live(true/false) -> pid port
  local dir port cport; dir=$(mktemp -d); port=$(free_port); cport=$(free_port)
  dotnet "$node_dll" --Mqtt:Port=$port --Cluster:Port=$cport --Node:DataDir=$dir --Sessions:CleanSessionsOnConnectionNode=$1 --Metrics:Port=0 >"$dir/node.log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do grep -q "Broker ready" "$dir/node.log" && break; sleep 0.2; done
  echo "$pid $port"
}
read -r pa porta < <(start true); read -r pb portb < <(start false)
trap 'kill -TERM $pa $pb 2>/dev/null || true' EXIT
run() { # label pid port qos scenario
  local dir c0 c1; dir=$(mktemp -d); c0=$(ticks $2)
  dotnet "$runner" $5 --targets 127.0.0.1:$3 --qos $4 --warmup 2s --drain 10s --no-live --report-dir "$dir" ${6:-} >"$dir/out.log" 2>&1 || true
  c1=$(ticks $2)
  python3 - "$dir/report.json" $((c1-c0)) $tck "$1" "$4" "$5" <<'PY'
import json,sys
r=json.load(open(sys.argv[1])); rec=sum(q["Received"] for q in r["PerQoS"])
print(f'{sys.argv[6]:15} {sys.argv[4]:6} QoS {sys.argv[5]}  {r["Rate"]:>9.0f} msg/s  {int(sys.argv[2])/int(sys.argv[3])/max(rec,1)*1e5:6.2f} CPU-s/100k  p50 {r["LatencyP50Ms"]:.2f} p99 {r["LatencyP99Ms"]:.2f}')
PY
}
for round in $(seq "${ROUNDS:-2}"); do
  for qos in 0 1; do
    run live $pa $porta $qos point-to-point "--clients 50 --load constant:50:10s"
    run entity $pb $portb $qos point-to-point "--clients 50 --load constant:50:10s"
  done
  run live $pa $porta 0 fan-out
  run entity $pb $portb 0 fan-out
done
