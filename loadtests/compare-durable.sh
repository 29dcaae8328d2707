#!/usr/bin/env bash
# Durable QoS 1 throughput of two broker builds side by side (SQLite), alternating A B A B on a fresh data dir each
# run (A B in odd rounds, B A in even ones), so that the machine's other load falls on both. Usage:
#   loadtests/compare-durable.sh <node-dir A> <node-dir B> [rounds] "<subscribers> <messages> <window> <payloadBytes>" ...
#   loadtests/compare-durable.sh /tmp/old/node Broker.Node/bin/Release/net10.0 2 "1 5000 100 64" "100 300 100 1024"
set -u
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${3:-2}; shift 3
L="dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"
PORT=$((18000 + $$ % 900)); CPORT=$((16000 + $$ % 900))
for shape in "$@"; do
  read -r subs msgs window size <<< "$shape"
  for round in $(seq 1 $ROUNDS); do
    order="A B"; (( round % 2 == 0 )) && order="B A" # which build goes first alternates too
    for build in $order; do
      dir=$(mktemp -d /tmp/cmpdur.XXXX); nodedir=$A; [ $build = B ] && nodedir=$B
      dotnet "$nodedir/Broker.Node.dll" --Mqtt:Port=$PORT --Cluster:Port=$CPORT --Node:DataDir=$dir \
        --Sessions:MaxQueuedMessages=100000 --Sessions:MaxInflight=1000 > $dir.log 2>&1 &
      pid=$!
      for i in $(seq 1 600); do grep -q "Broker ready" $dir.log && break; sleep 0.5; done
      $L durable $PORT $subs $(( msgs / 5 )) $window 1 $size > /dev/null # warm-up
      echo "$build round $round: $($L durable $PORT $subs $msgs $window 1 $size)"
      kill $pid; wait $pid 2>/dev/null
      rm -rf $dir $dir.log
    done
  done
done
