#!/usr/bin/env bash
# Managed allocations and GC pauses of the broker per message (or per connect), builds side by side:
# for each round and each build, a fresh Broker.Node (SQLite, free ports on 127.0.0.1), one unmeasured pass of the
# runner's scenario, then the same pass again while dotnet-counters reads the broker's allocation and GC pause rates.
#   BROKER_DLL="before=/tmp/a/Broker.Node.dll,after=Broker.Node/bin/Release/net10.0/Broker.Node.dll" \
#     loadtests/measure-allocations.sh 2 point-to-point --clients 50 --qos 0 --load inject:50000:8s
#   loadtests/measure-allocations.sh 2 connect-rate --max-connections 10000 --clients 100 --hold 1s
# Prints per run: bytes allocated per message sent (connect-rate: per connection opened and closed), GC pause time in
# the counted window, broker CPU per unit and the latency percentiles, as the runner reports them.
# Environment: BROKER_DLL (label=path,...; default "this=" this checkout's build), BROKER_ENV (environment for the
# broker only, e.g. DOTNET_gcServer=1), COUNT_SECONDS (counted window, default 18: it must cover the pass).
# Only 127.0.0.1; every process it starts is stopped by PID.
set -u
cd "$(dirname "$0")/.."
rounds=${1:-2}; shift
scenario=("$@")
[ ${#scenario[@]} -gt 0 ] || { echo "usage: $0 rounds <runner scenario and options>" >&2; exit 1; }
builds=${BROKER_DLL:-this=Broker.Node/bin/Release/net10.0/Broker.Node.dll}
count_seconds=${COUNT_SECONDS:-18}
export PATH="$PATH:$HOME/.dotnet/tools"
command -v dotnet-counters >/dev/null || dotnet tool install -g dotnet-counters >/dev/null 2>&1 || { echo "dotnet-counters is missing" >&2; exit 1; }
dotnet build -c Release -v q --nologo Broker.Node >/dev/null && dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >/dev/null || exit 1
ulimit -n "$(ulimit -Hn)"
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
units_of_connect_rate() { local next=""; for a in "${scenario[@]}"; do [ "$next" = 1 ] && { echo "$a"; return; }; [ "$a" = --max-connections ] && next=1; done; echo 0; }
out=$(mktemp -d /tmp/measure-allocations.XXXXXX)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  IFS=, read -r -a pairs <<<"$builds"
  for pair in "${pairs[@]}"; do
    label=${pair%%=*}; dll=${pair#*=}
    d="$out/$label-$round"; mkdir -p "$d"
    port=$(free_port)
    env ${BROKER_ENV:-BROKER_MEASURE=1} dotnet "$dll" --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" --Cluster:Hostname=127.0.0.1 \
      --Cluster:Port="$(free_port)" --Node:DataDir="$d/data" >"$d/broker.log" 2>&1 &
    pid=$!
    for _ in $(seq 150); do grep -q "Broker ready" "$d/broker.log" 2>/dev/null && break; sleep 0.2; done
    "${runner[@]}" "${scenario[@]}" --targets "127.0.0.1:$port" --warmup 0s --no-report --no-live >"$d/warm.log" 2>&1
    sleep 1
    dotnet-counters collect -p "$pid" --refresh-interval 1 --duration "00:00:00:$count_seconds" --format csv -o "$d/counters.csv" \
      --counters "System.Runtime[dotnet.gc.heap.total_allocated,dotnet.gc.pause.time]" >/dev/null 2>&1 &
    counters=$!
    sleep 1.5
    "${runner[@]}" "${scenario[@]}" --targets "127.0.0.1:$port" --warmup 0s --no-report --no-live >"$d/run.log" 2>&1
    wait "$counters"
    kill "$pid"; wait "$pid" 2>/dev/null
    if [ "${scenario[0]}" = connect-rate ]; then units=$(units_of_connect_rate); unit=connect
    else units=$(grep -E "^│ [012] " "$d/run.log" | awk -F'│' '{gsub(/[, ]/,"",$4); s+=$4} END{print s+0}'); unit=message; fi
    alloc=$(grep total_allocated "$d/counters.csv" | awk -F, '{s+=$NF} END{printf "%.0f", s}')
    pause=$(grep pause.time "$d/counters.csv" | awk -F, '{s+=$NF} END{printf "%.3f", s}')
    cpu=$(grep 'broker CPU' "$d/run.log" | grep -o '[0-9.]* µs per [a-z]*')
    latency=$(grep -E 'latency p50' "$d/run.log" | awk -F'│' '{print $3}' | tr -s ' ')
    [ "$units" -gt 0 ] 2>/dev/null || { echo "$label round $round: no units counted, see $d/run.log"; continue; }
    echo "$label round $round: $((alloc / units)) B allocated per $unit ($units), GC pauses ${pause} s of ${count_seconds} s, broker CPU ${cpu:-?}, latency p50/p90/p99/p99.9${latency:- -}"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs and counters: $out"
