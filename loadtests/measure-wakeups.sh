#!/usr/bin/env bash
# Thread wake-ups per delivered message: how many times the broker's threads went to sleep and were woken again
# (voluntary context switches, summed over every thread of the process from /proc/<pid>/task/*/status) per message
# delivered, on each message path, beside Mosquitto. A hand-off between threads costs a wake-up when the receiving
# thread sleeps; on a busy machine each wake-up is a chance to wait for a CPU, which is where the latency tail comes
# from (docs/benchmarks.md, "Thread hand-offs per message").
#   loadtests/measure-wakeups.sh [rounds]     (default 2; brokers alternate within a round)
# Environment: BROKERS (default "broker mosquitto"), BROKER_DLL (another build's Broker.Node.dll; several as
# label=path,label=path to compare builds), PATHS (default "q0 q1 q1p q0x50"). Each broker starts fresh on free ports
# (this one on SQLite in a temporary folder), takes a 2 s warm-up of the same path, then the measured run.
# Every client connects to 127.0.0.1 only; the run is bounded (10 s per path). Reports land in
# loadtests/reports/wakeups-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
brokers=${BROKERS:-broker mosquitto}
paths=${PATHS:-q0 q1 q1p q0x50}
out="loadtests/reports/wakeups-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"
dotnet build -c Release -v q --nologo Broker.Node >"$out/build.log" 2>&1 && \
  dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/{v+=$2} END{print v+0}'; }

declare -A path_args=(
  [q0]="point-to-point --clients 1 --qos 0 --load inject:1000:10s"
  [q1]="point-to-point --clients 1 --qos 1 --load inject:1000:10s"
  [q1p]="point-to-point --clients 1 --qos 1 --persistent --load inject:1000:10s"
  [q0x50]="point-to-point --clients 50 --qos 0 --load inject:20000:10s"
)
declare -A path_names=(
  [q0]="QoS 0, one pair, 1,000 msg/s"
  [q1]="QoS 1, one pair, 1,000 msg/s"
  [q1p]="QoS 1 persistent sessions, one pair, 1,000 msg/s"
  [q0x50]="QoS 0, 50 pairs, 20,000 msg/s"
)

# Builds: "broker" may stand for several builds (BROKER_DLL=label=path,label=path).
builds=()
for b in $brokers; do
  if [ "$b" = broker ] && [[ "${BROKER_DLL:-}" == *=* ]]; then
    IFS=, read -r -a specs <<<"$BROKER_DLL"; builds+=("${specs[@]}")
  elif [ "$b" = broker ]; then
    builds+=("broker=${BROKER_DLL:-Broker.Node/bin/Release/net10.0/Broker.Node.dll}")
  else
    builds+=("mosquitto=")
  fi
done

pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=""; }
trap stop EXIT
start() { # label dll dir
  port=$(free_port); mkdir -p "$3"
  if [ "$1" = mosquitto ]; then
    sed "s/@PORT@/$port/" loadtests/mosquitto-compare.conf >"$3/mosquitto.conf"
    "$mosquitto_bin" -c "$3/mosquitto.conf" >"$3.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && return 0; sleep 0.1; done
  else
    dotnet "$2" --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" --Cluster:Hostname=127.0.0.1 --Cluster:Port="$(free_port)" \
      --Node:DataDir="$3/data" >"$3.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do grep -q "Broker ready" "$3.log" 2>/dev/null && return 0; sleep 0.2; done
  fi
  echo "$1 did not start (see $3.log)" >&2; return 1
}

echo "| round | broker | path | delivered | wake-ups per message | broker CPU per message | p50 / p99 ms | load |" | tee "$out/summary.md"
echo "|---|---|---|---|---|---|---|---|" | tee -a "$out/summary.md"
for round in $(seq 1 "$rounds"); do
  for spec in "${builds[@]}"; do
    label=${spec%%=*}; dll=${spec#*=}
    for p in $paths; do
      [ "$label" = mosquitto ] && [ "$p" = q1p ] && continue # its persistence is a periodic file dump, not per message
      dir="$out/$label-$p-r$round"
      start "$label" "$dll" "$dir"
      # shellcheck disable=SC2086
      timeout 120 "${runner[@]}" ${path_args[$p]} --warmup 0s --load inject:1000:2s --drain 2s --targets "127.0.0.1:$port" \
        --broker-pid "$pid" --no-live --no-report >/dev/null 2>&1 || true
      before=$(switches "$pid")
      # shellcheck disable=SC2086
      timeout 120 "${runner[@]}" ${path_args[$p]} --warmup 0s --drain 3s --targets "127.0.0.1:$port" --broker-pid "$pid" \
        --no-live --report-dir "$dir" >"$dir-run.log" 2>&1 || true
      after=$(switches "$pid")
      stop
      python3 - "$dir/report.json" "$round" "$label" "${path_names[$p]}" "$((after - before))" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY' | tee -a "$out/summary.md" || echo "   $label $p: no report (see $dir-run.log)"
import json, sys
r = json.load(open(sys.argv[1])); n = max(r["MeasuredCount"] - r["TotalLost"], 1)
print(f'| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {n:,} | {int(sys.argv[5]) / n:.2f} | '
      f'{r["BrokerCpuMicrosPerUnit"] or 0:.1f} µs | {r["LatencyP50Ms"]:.3f} / {r["LatencyP99Ms"]:.3f} | {sys.argv[6]} |')
PY
    done
  done
done
echo "report: $out/summary.md"
