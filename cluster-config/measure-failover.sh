#!/usr/bin/env bash
# Measurements of the cluster for docs/benchmarks.md (issue 4).
#
#   cluster-config/measure-failover.sh failover [runs]            # default 5
#     Runs the SIGKILL failover spec (Broker.Tests FailoverSpecs.Kill_9..., three Broker.Node processes on a throwaway
#     PostgreSQL, persistent QoS 1/2 publishers and subscribers on every node) once per run, killing node 1, 2, 3, 1,
#     2, ... in turn, and prints each run's "every client resumed N ms after the kill", "missing" (acknowledged
#     messages never delivered) and whether a QoS 2 message was taken twice (which fails the spec), then the median time. Requires a Release build (dotnet build Cluster.sln -c Release).
#     BROKER_FAILOVER_BEFORE=<path of another checkout, built the same way> alternates: each run first with that build,
#     then with this one, and prints both medians (before/after comparisons on a shared machine).
#
#   cluster-config/measure-failover.sh throughput [rounds] [qos] [pairs]   # default 3, 0 then 1, 10
#     Cross-node against single-node, in one run on this machine, alternating (single, cluster) for each round: the
#     load runner's point-to-point scenario (loadtests/Broker.LoadTests; P publisher/subscriber pairs, 100-message
#     batches, 2 s warm-up, 10 s measured, clean sessions, 64-byte payloads). Single node: one Broker.Node (SQLite in
#     a temp dir, free ports), every client on it. Cluster: the local three-node cluster (local-cluster.sh up, under
#     the fixed-ports lock), targets node 1 and node 2, and the runner puts every publisher on the other node from its
#     subscriber, so every message crosses nodes. Prints messages/s, p50/p99 latency, and broker CPU seconds per 100k
#     delivered messages: utime+stime of every broker process (all three nodes in the cluster) from /proc/<pid>/stat
#     around the whole runner invocation, over every message delivered in it. Then the medians and the ratios.
#     Requires a Release build (dotnet build Cluster.sln -c Release).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
node_dll="$repo/Broker.Node/bin/Release/net10.0/Broker.Node.dll"
tck=$(getconf CLK_TCK)

cpu_ticks() { # pid... -> utime+stime summed, in clock ticks
  local total=0 pid
  for pid in "$@"; do
    # fields after the ")" of the command name: state is field 3, utime 14, stime 15
    read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat")
    total=$((total + f[11] + f[12]))
  done
  echo $total
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

runner_dll="$repo/loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"

# One point-to-point run against the targets in $1 (comma-separated ports), broker PIDs in the rest.
# Prints "msgs/s p50_ms p99_ms cpu_s_per_100k lost".
p2p() {
  local ports=$1; shift
  local dir c0 c1 targets
  dir=$(mktemp -d)
  targets=$(echo "$ports" | sed 's/\([0-9]*\)/127.0.0.1:\1/g')
  c0=$(cpu_ticks "$@")
  dotnet "$runner_dll" point-to-point --targets "$targets" --clients "$pairs" --qos "$qos" --load "constant:$pairs:10s" \
    --warmup 2s --drain 20s --broker-pid "$1" --no-live --report-dir "$dir" >"$dir/out.log" 2>&1 || true
  c1=$(cpu_ticks "$@")
  python3 - "$dir/report.json" "$((c1 - c0))" "$tck" <<'PY' || { echo "run failed: $(tail -3 "$dir/out.log")" >&2; echo "0 0 0 0 -1"; }
import json, sys
r = json.load(open(sys.argv[1]))
received = sum(q["Received"] for q in r["PerQoS"])
lost = sum(q["Lost"] for q in r["PerQoS"])
cpu = int(sys.argv[2]) / int(sys.argv[3])
print(f'{r["Rate"]:.0f} {r["LatencyP50Ms"]:.2f} {r["LatencyP99Ms"]:.2f} {cpu / max(received, 1) * 100000:.2f} {lost}')
PY
  rm -rf "$dir"
}

throughput() {
  local rounds=${1:-3} qos_list=${2:-0 1}
  pairs=${3:-10}
  [ -f "$node_dll" ] && [ -f "$runner_dll" ] || { echo "build first: dotnet build Cluster.sln -c Release" >&2; exit 1; }
  local dir port cport pid results
  results=$(mktemp)
  dir=$(mktemp -d); port=$(free_port); cport=$(free_port)
  dotnet "$node_dll" --Mqtt:Port="$port" --Cluster:Port="$cport" --Node:DataDir="$dir" >"$dir/node.log" 2>&1 &
  pid=$!
  # Stop the single node however this ends (a cluster that fails to start exits the script through set -e).
  # shellcheck disable=SC2064 # expanded now: pid is local to this function, and the trap runs after it returned
  trap "kill -TERM $pid 2>/dev/null || true" EXIT
  for _ in $(seq 450); do grep -q "Broker ready" "$dir/node.log" && break; sleep 0.2; done
  (
    flock 9
    "$here/local-cluster.sh" up >/dev/null
    trap '"$here/local-cluster.sh" down >/dev/null' EXIT
    pids=$(grep -o 'node[0-9]=[0-9]*' "$here/.run/state" | cut -d= -f2 | tr '\n' ' ')
    echo "point-to-point, $pairs pairs, 64-byte payloads; single node pid $pid; cluster pids $pids"
    for qos in $qos_list; do
      for round in $(seq "$rounds"); do
        echo "QoS $qos single $(p2p "$port" "$pid")" | tee -a "$results"
        # shellcheck disable=SC2086
        echo "QoS $qos cluster $(p2p 1883,1884 $pids)" | tee -a "$results"
      done
    done
  ) 9>/tmp/broker-fixed-ports.lock
  kill -TERM "$pid"; wait "$pid" || true
  trap - EXIT
  rm -rf "$dir"
  python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    _, qos, mode, rate, p50, p99, cpu, lost = line.split()
    rows.setdefault((qos, mode), []).append((float(rate), float(p50), float(p99), float(cpu), int(lost)))
print("| QoS | set-up | msg/s (median) | p50 ms | p99 ms | broker CPU s per 100k delivered | lost |")
print("|---|---|---|---|---|---|---|")
for (qos, mode), v in sorted(rows.items()):
    med = [statistics.median(x[i] for x in v) for i in range(4)]
    print(f"| {qos} | {mode} | {med[0]:,.0f} | {med[1]:.2f} | {med[2]:.2f} | {med[3]:.2f} | {sum(x[4] for x in v)} |")
for qos in sorted({q for q, _ in rows}):
    s, c = rows.get((qos, "single")), rows.get((qos, "cluster"))
    if s and c:
        print(f"QoS {qos}: cluster/single throughput {statistics.median(x[0] for x in c) / statistics.median(x[0] for x in s):.2f}x, "
              f"CPU per message {statistics.median(x[3] for x in c) / statistics.median(x[3] for x in s):.2f}x")
PY
  rm -f "$results"
}

# One SIGKILL run of the spec in repo $1 (its Release build) with node $2 as the victim; prints one result line and
# appends the time to the file $3.
failover_run() {
  local repo=$1 node=$2 times=$3 log ms missing dups result
  log=$(mktemp)
  BROKER_FAILOVER_NODE=$node dotnet test "$repo/Broker.Tests" -c Release --no-build \
    --filter "FullyQualifiedName~FailoverSpecs.Kill_9" --logger "console;verbosity=detailed" >"$log" 2>&1 || true
  ms=$(grep -m1 -o 'every client resumed [0-9]* ms' "$log" | grep -o '[0-9]*' || echo "")
  missing=$(grep -m1 -o 'missing: [0-9]*' "$log" | grep -o '[0-9]*' || echo "?")
  if grep -q 'taken more than once' "$log"; then dups=yes; else dups=no; fi # a duplicate fails the spec; its message names them
  if grep -q "Passed: *1" "$log"; then result=passed; else result=FAILED; fi
  echo "SIGKILL node $node: every client resumed ${ms:-?} ms after the kill; acknowledged but missing: $missing; QoS 2 taken twice: $dups; spec $result; load $(cut -d' ' -f1 /proc/loadavg)"
  [ "$result" = FAILED ] && grep -m3 -A3 "Error Message" "$log" | sed 's/^/    /'
  [ -n "$ms" ] && echo "$ms" >>"$times"
  rm -f "$log"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR) {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print "median of " NR " kills: " m " ms"}}'; }

# BROKER_FAILOVER_BEFORE=<another checkout, built> alternates: each run first with that build, then with this one.
failover() {
  local runs=${1:-5} i node before_times after_times
  before_times=$(mktemp); after_times=$(mktemp)
  for i in $(seq "$runs"); do
    node=$(( (i - 1) % 3 + 1 ))
    if [ -n "${BROKER_FAILOVER_BEFORE:-}" ]; then
      echo -n "run $i, before: "; failover_run "$BROKER_FAILOVER_BEFORE" "$node" "$before_times"
    fi
    echo -n "run $i: "; failover_run "$repo" "$node" "$after_times"
  done
  if [ -n "${BROKER_FAILOVER_BEFORE:-}" ]; then echo -n "before: "; median "$before_times"; echo -n "this build: "; fi
  median "$after_times"
  rm -f "$before_times" "$after_times"
}

case "${1:-}" in
  failover) shift; failover "$@" ;;
  throughput) shift; throughput "$@" ;;
  *) sed -n '2,21p' "$0"; exit 1 ;;
esac
