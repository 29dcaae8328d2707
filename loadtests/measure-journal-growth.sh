#!/usr/bin/env bash
# Journal growth per published message on SQLite: N offline persistent subscribers (clean session 0, QoS 1) on one
# topic, M QoS 1 publishes of S bytes (each acknowledged, so each stored for all N), then the journal rows and bytes
# that the publishes added, split by session and topic journals. Usage:
#   loadtests/measure-journal-growth.sh [node-dir] [subscriber counts] [payload sizes] [messages] [extra node flags]
#   loadtests/measure-journal-growth.sh Broker.Node/bin/Release/net10.0 "1 10 100 1000" "100 4096" 10
# Uses free ports (17xxx/15xxx chosen from the PID) and mosquitto_sub/mosquitto_pub as clients; snapshots are off
# (Storage:SnapshotEvery is above the event count) so that every stored event is counted.
set -u
cd "$(dirname "$0")/.."
NODE_DIR=${1:-Broker.Node/bin/Release/net10.0}
COUNTS=${2:-"1 10 100 1000"}
SIZES=${3:-"100 4096"}
M=${4:-10}
EXTRA=${5:-}
PORT=$((17000 + $$ % 900)); CPORT=$((15000 + $$ % 900))

sql() { sqlite3 -cmd ".timeout 5000" "$1/broker.db" "$2"; }
stats() { # dir -> "session_rows session_bytes topic_rows topic_bytes snapshot_bytes"
  local s t snap
  s=$(sql "$1" "select count(*), coalesce(sum(length(message)),0) from journal where persistence_id like 'session-%' and deleted = 0;")
  t=$(sql "$1" "select count(*), coalesce(sum(length(message)),0) from journal where persistence_id like 'topic-%' and deleted = 0;")
  snap=$(sql "$1" "select coalesce(sum(length(snapshot)),0) from snapshot;")
  echo "${s/|/ } ${t/|/ } $snap"
}

printf '| subscribers (sessions stored) | payload B | session rows/msg | session bytes/msg | topic rows/msg | topic bytes/msg | journal bytes/msg | bytes/msg/subscriber |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for n in $COUNTS; do
  for size in $SIZES; do
    dir=$(mktemp -d /tmp/jgrow.XXXX)
    dotnet "$NODE_DIR/Broker.Node.dll" --Mqtt:Port=$PORT --Cluster:Port=$CPORT --Node:DataDir=$dir \
      --Storage:SnapshotEvery=1000000 $EXTRA > $dir.log 2>&1 &
    pid=$!
    for i in $(seq 1 600); do grep -q "Broker ready" $dir.log && break; sleep 0.5; done
    if ! grep -q "Broker ready" $dir.log; then echo "| $n | $size | node not ready: $(tail -2 $dir.log | tr "\n" " ") |"; kill $pid; wait $pid 2>/dev/null; continue; fi
    topic="grow/$n/$size"
    subs=()
    for i in $(seq 1 $n); do
      # a connect refused under load is tried again (up to 5 times)
      (for t in 1 2 3 4 5; do mosquitto_sub -p $PORT -c -i "grow-$n-$size-$i" -q 1 -t "$topic" -E 2>/dev/null && break; sleep 1; done) &
      subs+=($!)
      if (( ${#subs[@]} >= 20 )); then wait "${subs[@]}"; subs=(); fi
    done
    if (( ${#subs[@]} > 0 )); then wait "${subs[@]}"; fi
    sessions=$(sql $dir "select count(distinct persistence_id) from journal where persistence_id like 'session-grow-%';")
    head -c $size /dev/urandom > $dir.payload
    read -r s0 sb0 t0 tb0 snap0 <<< "$(stats $dir)"
    for i in $(seq 1 $M); do mosquitto_pub -p $PORT -q 1 -t "$topic" -f $dir.payload -i "grow-pub"; done
    read -r s1 sb1 t1 tb1 snap1 <<< "$(stats $dir)"
    awk -v n=$sessions -v asked=$n -v size=$size -v m=$M -v s=$((s1-s0)) -v sb=$((sb1-sb0)) -v t=$((t1-t0)) -v tb=$((tb1-tb0)) \
      'BEGIN { printf "| %d (%d) | %d | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f |\n", asked, n, size, s/m, sb/m, t/m, tb/m, (sb+tb)/m, (sb+tb)/m/n }'
    kill $pid 2>/dev/null || cp $dir.log /tmp/jgrow-died-$n-$size.log # the node stopped by itself: keep its log
    wait $pid 2>/dev/null
    rm -rf $dir $dir.log $dir.payload
  done
done
