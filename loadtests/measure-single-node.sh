#!/usr/bin/env bash
# Measures the single-node broker: durable QoS 1 on SQLite and PostgreSQL, fan-in QoS 0/1 with broker CPU.
set -u
cd "$(dirname "$0")/.."
L="dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"
N="dotnet Broker.Node/bin/Release/net10.0/Broker.Node.dll"
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run_node() { # port cluster-port datadir extra...
  local port=$1 cport=$2 dir=$3; shift 3
  rm -rf $dir; mkdir -p $dir
  $N --Mqtt:Port=$port --Cluster:Port=$cport --Node:DataDir=$dir --Sessions:MaxQueuedMessages=100000 --Sessions:MaxInflight=1000 "$@" > $dir.log 2>&1 &
  echo $!
}
wait_ready() { for i in $(seq 1 60); do grep -q "Broker ready" $1.log 2>/dev/null && return 0; sleep 0.5; done; return 1; }

echo "== SQLite"
pid=$(run_node 18870 14090 /tmp/m-sqlite); wait_ready /tmp/m-sqlite
$L durable 18870 1 5000 100 > /dev/null   # warm-up
for r in 1 2 3; do $L durable 18870 1 10000 100; done
for r in 1 2; do $L durable 18870 10 5000 100; done
a=$(cpu $pid); $L fanin 18870 10 50000 0 >/dev/null; $L fanin 18870 10 50000 0; b=$(cpu $pid); echo "fan-in QoS 0 x2 runs broker CPU us/msg: $(echo "($b-$a)*10000/1000000" | bc -l | cut -c1-5)"
a=$(cpu $pid); $L fanin 18870 10 50000 1; b=$(cpu $pid); echo "fan-in QoS 1 broker CPU us/msg: $(echo "($b-$a)*10000/500000" | bc -l | cut -c1-5)"
kill $pid; wait $pid 2>/dev/null

echo "== PostgreSQL"
dir=$(mktemp -d /tmp/pgm.XXXX); chown postgres:postgres "$dir"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$dir/data" -l "$dir/pg.log" -o "-c listen_addresses=127.0.0.1 -p 55498 -k $dir" -w start >/dev/null
psql -q -h 127.0.0.1 -p 55498 -U postgres -c 'create database broker'
pid=$(run_node 18871 14091 /tmp/m-pg --Storage:Provider=postgresql "--Storage:ConnectionString=Host=127.0.0.1;Port=55498;Database=broker;Username=postgres"); wait_ready /tmp/m-pg
$L durable 18871 1 5000 100 > /dev/null
for r in 1 2 3; do $L durable 18871 1 10000 100; done
for r in 1 2; do $L durable 18871 10 5000 100; done
kill $pid; wait $pid 2>/dev/null
runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"
