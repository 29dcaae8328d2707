#!/usr/bin/env bash
# Measurements of the cluster for docs/benchmarks.md (issue 4).
#
#   cluster-config/measure-failover.sh failover [runs]            # default 5
#     Runs the SIGKILL failover spec (Broker.Tests FailoverSpecs.Kill_9..., three Broker.Node processes on a throwaway
#     PostgreSQL, persistent QoS 1/2 publishers and subscribers on every node) once per run, killing node 1, 2, 3, 1,
#     2, ... in turn, and prints each run's "every client resumed N ms after the kill", "missing" (acknowledged
#     messages never delivered) and whether a QoS 2 message was taken twice (which fails the spec), then the median time. Requires a Release build (dotnet build Cluster.sln -c Release).
#
#   cluster-config/measure-failover.sh throughput [messages] [qos]  # default 100000, 1
#     In one run on this machine: one Broker.Node alone (SQLite in a temp dir, free port), then the local three-node
#     cluster (local-cluster.sh up, under the fixed-ports lock): mosquitto_sub on the subscriber node and mosquitto_pub
#     -l on the publisher node (single: the same node; cluster: publisher on node 1, subscriber on node 2), 64-byte
#     payloads, clean sessions. Prints messages/s (first message published -> last delivered) and broker CPU seconds
#     per 100k delivered messages (utime+stime of every broker process from /proc/<pid>/stat, before and after).
#     mosquitto_pub keeps 20 QoS 1 messages in flight: at QoS 1 it, not the broker, may set the pace; both set-ups
#     use the same client, so the ratio holds.
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

# One measurement: subscriber on $1, publisher on $2, broker PIDs in the rest. Prints "msgs/s cpu_s_per_100k".
measure() {
  local sub_port=$1 pub_port=$2; shift 2
  local out topic lines start end c0 c1 got
  out=$(mktemp); topic="bench/$RANDOM$RANDOM"
  mosquitto_sub -h 127.0.0.1 -p "$sub_port" -q "$qos" -v -t "$topic/#" >"$out" 2>/dev/null &
  local sub=$!
  # Ready when a probe published on the publisher's node comes back (the subscription is routed cluster-wide).
  for _ in $(seq 150); do
    mosquitto_pub -h 127.0.0.1 -p "$pub_port" -q 1 -t "$topic/ready" -m ready
    grep -q "^$topic/ready" "$out" && break
    sleep 0.2
  done
  grep -q "^$topic/ready" "$out" || { echo "subscriber never saw the probe" >&2; kill "$sub"; return 1; }
  c0=$(cpu_ticks "$@")
  start=$(date +%s.%N)
  mosquitto_pub -h 127.0.0.1 -p "$pub_port" -q "$qos" -t "$topic/data" -l <"$payloads" &
  local pub=$!
  got=0
  for _ in $(seq 3000); do # bounded: 300 s
    got=$(grep -c "^$topic/data" "$out" || true)
    [ "$got" -ge "$messages" ] && break
    sleep 0.1
  done
  end=$(date +%s.%N)
  c1=$(cpu_ticks "$@")
  wait "$pub" || true
  kill "$sub" 2>/dev/null || true
  wait "$sub" 2>/dev/null || true
  rm -f "$out"
  python3 -c "import sys; n,m,t,c,k=int(sys.argv[1]),int(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]),int(sys.argv[5]); print(f'{n/t:.0f} msg/s, {c/k*100000/max(n,1):.2f} CPU s per 100k delivered, {n}/{m} delivered in {t:.2f} s')" \
    "$got" "$messages" "$(echo "$end - $start" | bc)" "$((c1 - c0))" "$tck"
}

throughput() {
  messages=${1:-100000}; qos=${2:-1}
  [ -f "$node_dll" ] || { echo "build first: dotnet build Cluster.sln -c Release" >&2; exit 1; }
  payloads=$(mktemp)
  python3 -c "import sys; [print(f'{i:010d}' + 'x'*54) for i in range(int(sys.argv[1]))]" "$messages" >"$payloads"
  echo "messages: $messages, QoS $qos, 64-byte payloads, mosquitto_pub -l -> mosquitto_sub (clean sessions)"

  local dir port pid
  dir=$(mktemp -d); port=$(free_port)
  dotnet "$node_dll" --Mqtt:Port="$port" --Cluster:Port=0 --Node:DataDir="$dir" >"$dir/node.log" 2>&1 &
  pid=$!
  for _ in $(seq 450); do grep -q "Broker ready" "$dir/node.log" && break; sleep 0.2; done
  echo -n "single node (publisher and subscriber on it):       "
  measure "$port" "$port" "$pid" || true
  kill -TERM "$pid"; wait "$pid" || true
  rm -rf "$dir"

  (
    flock 9
    "$here/local-cluster.sh" up >/dev/null
    trap '"$here/local-cluster.sh" down >/dev/null' EXIT
    # shellcheck disable=SC1091
    pids=$(grep -o 'node[0-9]=[0-9]*' "$here/.run/state" | cut -d= -f2)
    echo -n "three-node cluster (publisher node 1, subscriber node 2): "
    # shellcheck disable=SC2086
    measure 1884 1883 $pids || true
  ) 9>/tmp/broker-fixed-ports.lock
  rm -f "$payloads"
}

failover() {
  local runs=${1:-5} times=() i node log ms missing
  for i in $(seq "$runs"); do
    node=$(( (i - 1) % 3 + 1 ))
    log=$(mktemp)
    BROKER_FAILOVER_NODE=$node dotnet test "$repo/Broker.Tests" -c Release --no-build \
      --filter "FullyQualifiedName~FailoverSpecs.Kill_9" --logger "console;verbosity=detailed" >"$log" 2>&1 || true
    ms=$(grep -m1 -o 'every client resumed [0-9]* ms' "$log" | grep -o '[0-9]*' || echo "")
    missing=$(grep -m1 -o 'missing: [0-9]*' "$log" | grep -o '[0-9]*' || echo "?")
    if grep -q 'taken more than once' "$log"; then dups=yes; else dups=no; fi # a duplicate fails the spec; its message names them
    if grep -q "Passed: *1" "$log"; then result=passed; else result=FAILED; fi
    echo "run $i: SIGKILL node $node: every client resumed ${ms:-?} ms after the kill; acknowledged but missing: $missing; QoS 2 taken twice: $dups; spec $result"
    [ "$result" = FAILED ] && grep -m3 -A3 "Error Message" "$log" | sed 's/^/    /'
    [ -n "$ms" ] && times+=("$ms")
    rm -f "$log"
  done
  [ ${#times[@]} -gt 0 ] && printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; print "median of " NR " kills: " m " ms"}'
}

case "${1:-}" in
  failover) shift; failover "$@" ;;
  throughput) shift; throughput "$@" ;;
  *) sed -n '2,18p' "$0"; exit 1 ;;
esac
