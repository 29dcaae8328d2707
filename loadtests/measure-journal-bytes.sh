#!/usr/bin/env bash
# Journal rows and bytes per stored delivery under a durable flood (SQLite), for one or more builds side by side:
# one persistent QoS 1 subscriber that reads as the messages come, one publisher keeping 100 QoS 1 publishes in flight
# (the durable probe), snapshots off (Storage:SnapshotEvery above the event count) so every row written is counted.
# Usage: loadtests/measure-journal-bytes.sh [messages] <node-dir>...
#   loadtests/measure-journal-bytes.sh 20000 /tmp/old/Broker.Node/bin/Release/net10.0 Broker.Node/bin/Release/net10.0
set -u
cd "$(dirname "$0")/.."
M=${1:-20000}; shift
L="dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
printf '| build | stored deliveries | journal rows | rows per delivery | event bytes per delivery | SQLite file bytes per delivery |\n|---|---|---|---|---|---|\n'
for node in "$@"; do
  dir=$(mktemp -d /tmp/jbytes.XXXX); PORT=$(free_port); CPORT=$(free_port)
  dotnet "$node/Broker.Node.dll" --Mqtt:Port=$PORT --Cluster:Port=$CPORT --Node:DataDir=$dir --Metrics:Port=0 \
    --Storage:SnapshotEvery=1000000 --Sessions:MaxQueuedMessages=100000 > $dir.log 2>&1 &
  pid=$!
  for i in $(seq 1 600); do grep -q "Broker ready" $dir.log && break; sleep 0.5; done
  grep -q "Broker ready" $dir.log || { echo "| $node | node not ready: $(tail -2 $dir.log | tr '\n' ' ') |"; kill $pid; continue; }
  before=$(stat -c %s $dir/broker.db $dir/broker.db-wal 2>/dev/null | awk '{s+=$1} END {print s+0}')
  $L durable $PORT 1 $M 100 1 64 > /dev/null
  sleep 1
  kill $pid; wait $pid 2>/dev/null
  sqlite3 "$dir/broker.db" "PRAGMA wal_checkpoint(TRUNCATE);" > /dev/null
  after=$(stat -c %s $dir/broker.db $dir/broker.db-wal 2>/dev/null | awk '{s+=$1} END {print s+0}')
  read -r rows bytes <<< "$(sqlite3 -separator ' ' "$dir/broker.db" "select count(*), coalesce(sum(length(message)),0) from journal where persistence_id like 'session-%';")"
  awk -v b="$node" -v m=$M -v r=$rows -v e=$bytes -v f=$((after - before)) \
    'BEGIN { printf "| %s | %d | %d | %.3f | %.1f | %.1f |\n", b, m, r, r / m, e / m, f / m }'
  rm -rf $dir $dir.log
done
