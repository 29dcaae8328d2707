#!/usr/bin/env bash
# QoS 1 floods side by side: this build, an earlier build (BEFORE: a Broker.Node.dll, e.g. of the commit before a
# change) and Mosquitto (loadtests/mosquitto-compare.conf: the same queue and in-flight limits), each started fresh on
# free ports for each scenario of each round; prints acknowledged, delivered, lost, rate and p99 latency per run
# (delivery latency; for "storm" the well-behaved publisher's PUBACK latency).
#   BEFORE=/path/to/Broker.Node.dll loadtests/compare-flow.sh [rounds]     (default 1)
# Environment: DURATION (measured seconds per scenario, default 8), ONLY (scenario names, e.g. "p2p-q1"),
# BROKER_FLAGS (extra flags for both Broker.Node builds), MQTT (3 or 5, default 3), CLUSTER=1 (this build as the local
# three-node cluster of cluster-config/ on one PostgreSQL, started fresh for each scenario under
# /tmp/broker-fixed-ports.lock; the runner spreads its clients over the three nodes and sums CPU and RSS over them; BEFORE
# is not run then). Reports: loadtests/reports/flow-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-1}
duration=${DURATION:-8}
mqtt=${MQTT:-3}
out="loadtests/reports/flow-$(date -u +%Y%m%d-%H%M%S)${CLUSTER:+-cluster}"
cluster=${CLUSTER:-}
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
dotnet build -c Release -v q --nologo Broker.Node >"$out/build.log" 2>&1 && \
  dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
brokers=(broker mosquitto)
[ -n "${BEFORE:-}" ] && [ -z "$cluster" ] && brokers=(before broker mosquitto)

pid=""
cluster_up=""
start_broker() { # name -> pid (comma-separated for a cluster), targets
  port=$(free_port)
  targets="127.0.0.1:$port"
  local dir="$out/$1-run"
  rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
  if [ "$1" = broker ] && [ -n "$cluster" ]; then
    # The fixed ports of cluster-config (1883-1885, 4053-4055, 55432) are shared by every user of this machine.
    exec 9>/tmp/broker-fixed-ports.lock
    flock 9
    cluster-config/local-cluster.sh up >"$dir.log" 2>&1 || { cat "$dir.log" >&2; flock -u 9; return 1; }
    cluster_up=1
    pid=$(grep -o 'node[0-9]=[0-9]*' cluster-config/.run/state | cut -d= -f2 | paste -sd, -)
    targets="127.0.0.1:1883,127.0.0.1:1884,127.0.0.1:1885"
    return 0
  fi
  if [ "$1" = mosquitto ]; then
    sed "s/@PORT@/$port/" loadtests/mosquitto-compare.conf >"$dir/mosquitto.conf"
    "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && return 0; sleep 0.1; done
  else
    local dll=Broker.Node/bin/Release/net10.0/Broker.Node.dll
    [ "$1" = before ] && dll=$BEFORE
    # shellcheck disable=SC2086
    dotnet "$dll" --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" --Cluster:Hostname=127.0.0.1 \
      --Cluster:Port="$(free_port)" --Node:DataDir="$dir/data" ${BROKER_FLAGS:-} >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do grep -q "Broker ready" "$dir.log" 2>/dev/null && return 0; sleep 0.2; done
  fi
  echo "$1 did not start (see $dir.log)" >&2; return 1
}
stop_broker() {
  if [ -n "$cluster_up" ]; then
    cluster-config/local-cluster.sh down >/dev/null 2>&1 || true
    cluster_up=""; flock -u 9
  elif [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'stop_broker' EXIT

common="--qos 1 --window 100 --batch 100 --warmup 2s --drain 15s --mqtt $mqtt"
scenarios=(
  "p2p-q1|point-to-point --clients 50 --load constant:50:${duration}s $common"
  "fanin-q1-slow|fan-in --clients 50 --slow-subscribers 1 --slow-rate 5000 --load constant:50:${duration}s $common"
  "fanout-q1-slow|fan-out --clients 1 --subscribers 100 --slow-subscribers 1 --slow-rate 2000 --load constant:1:${duration}s $common"
  "storm|storm --load inject:50:${duration}s --warmup 2s --drain 5s"
)

printf '%-9s %-15s %12s %12s %12s %10s %12s %9s %10s %s\n' build scenario acknowledged owed received lost rate "p99 ms" "peak rss MB" refused
for round in $(seq "$rounds"); do
  for s in "${scenarios[@]}"; do
    name=${s%%|*}; args=${s#*|}
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    for b in "${brokers[@]}"; do
      start_broker "$b"
      # shellcheck disable=SC2086
      timeout 300 "${runner[@]}" $args --targets "$targets" --broker-pid "$pid" --no-live \
        --report-dir "$out/$b-$name-r$round" >"$out/$b-$name-r$round.log" 2>&1 || true
      stop_broker
      python3 - "$out/$b-$name-r$round/report.json" "$b" "$name" <<'PY' || echo "$b $name: no report (see log)"
import json, sys
r = json.load(open(sys.argv[1]))
q = r["PerQoS"]
acked = sum(x["Acked"] for x in q); owed = sum(x["Expected"] for x in q); recv = sum(x["Received"] for x in q); lost = sum(x["Lost"] for x in q)
f = r.get("Facts", {})
refused = next((v for k, v in f.items() if k.startswith("publishes refused")), "0")
print(f'{sys.argv[2]:<9} {sys.argv[3]:<15} {acked:>12,} {owed:>12,} {recv:>12,} {lost:>10,} {r["Rate"]:>12,.0f} {r["LatencyP99Ms"]:>9.2f} {max([x.get("BrokerRssMb") or 0 for x in r.get("Series", [])] or [0]):>10.0f} {refused}')
PY
    done
  done
done | tee "$out/summary.txt"
