#!/usr/bin/env bash
# Two builds of Broker.Node and Mosquitto side by side, alternating A B M A B M: fan-in QoS 0 (50 publishers -> one
# wildcard subscriber) and idle clean connections, with the same runner arguments as loadtests/compare-mosquitto.sh.
#   loadtests/probes/compare-builds-mosquitto.sh <checkout-A> <checkout-B> [rounds]
# Each checkout needs `dotnet build -c Release Broker.Node`; the runner is this checkout's. Environment: DURATION
# (fan-in seconds, default 8), CONNECTIONS (default 19000), CONNECT_TIME (seconds to open them, default 60), ONLY
# ("fanin-q0" or "idle-conns"). Every broker started here is stopped by its PID; traffic goes to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."
a=$(cd "$1" && pwd); b=$(cd "$2" && pwd); rounds=${3:-2}
duration=${DURATION:-8}; connections=${CONNECTIONS:-19000}; connect_time=${CONNECT_TIME:-60}
out="loadtests/reports/builds-$(date -u +%Y%m%d-%H%M%S)"; mkdir -p "$out"
ulimit -n "$(ulimit -Hn)"
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid=""
start() { # label checkout|mosquitto
  port=$(free_port); local dir="$out/$1-run"; rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
  if [ "$2" = mosquitto ]; then
    sed "s/@PORT@/$port/" loadtests/mosquitto-compare.conf >"$dir/mosquitto.conf"
    "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && return 0; sleep 0.1; done
  else
    dotnet "$2/Broker.Node/bin/Release/net10.0/Broker.Node.dll" --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" \
      --Cluster:Hostname=127.0.0.1 --Cluster:Port="$(free_port)" --Node:DataDir="$dir/data" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do grep -q "Broker ready" "$dir.log" 2>/dev/null && return 0; sleep 0.2; done
  fi
  echo "$1 did not start (see $dir.log)" >&2; return 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }
# CPU time of the broker process so far, in microseconds (utime + stime from /proc/<pid>/stat).
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000000 / hz }' "/proc/$1/stat"; }
trap stop EXIT

scenarios=(
  "fanin-q0|fan-in --clients 50 --qos 0 --load constant:50:${duration}s --batch 100 --warmup 3s --drain 5s"
  "idle-conns|connect-storm --clients 50 --load inject:1000:${connect_time}s --max-connections $connections --hold 5s --warmup 0s --drain 1s"
)
for round in $(seq "$rounds"); do
  for side in "A|$a" "B|$b" "M|mosquitto"; do
    label=${side%%|*}
    for s in "${scenarios[@]}"; do
      name=${s%%|*}; args=${s#*|}
      if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
      start "$label" "${side#*|}"   # a fresh broker per scenario: the idle connections must not follow a flood
      cpu0=$(cpu_us "$pid")
      # shellcheck disable=SC2086
      timeout 600 "${runner[@]}" $args --targets "127.0.0.1:$port" --broker-pid "$pid" --no-live \
        --report-dir "$out/$label-$name-r$round" >"$out/$label-$name-r$round.log" 2>&1 || true
      cpu1=$(cpu_us "$pid")
      stop
      python3 - "$out/$label-$name-r$round/report.json" "$label $name r$round" "$cpu0" "$cpu1" <<'PY' || echo "   $label $name: no report"
import json, sys
r = json.load(open(sys.argv[1])); f = r.get("Facts", {}); q = r["PerQoS"]
sent = sum(x["Sent"] for x in q); recv = sum(x["Received"] for x in q)
# Whole run (warm-up, measurement and drain): broker CPU over every delivered message. The runner's own us/unit
# covers the measurement window only, which misleads when an overloaded broker delivers much of it in the drain.
cpu = float(sys.argv[4]) - float(sys.argv[3])
extra = (f'  open {f.get("connections open after hold","?")} rss/conn {f.get("broker RSS per idle connection","?")}' if "idle" in sys.argv[2]
         else f'  sent {sent:,} received {recv:,}  whole run: broker {cpu / 1e6:.1f} s CPU, {cpu / max(recv, 1):.2f} us per delivery')
print(f'{sys.argv[2]:<16} {r["Rate"]:>10,.0f} {r["RateUnit"]:<10} broker {r["BrokerCpuMicrosPerUnit"] or 0:7.2f} us/unit  broker cores {r.get("BrokerCores", 0) or 0:.2f}  runner {r["RunnerCores"]:.2f} cores{extra}')
PY
    done
  done
done
