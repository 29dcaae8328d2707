#!/usr/bin/env bash
# Sessions at scale on one node: start-up time to ready and memory with N stored offline persistent sessions (each
# with one QoS 1 subscription, half exact topics, half wildcard filters), memory per passivated session, and the
# resume rate (clients reconnecting with Clean Start 0). Only 127.0.0.1; every process it starts is stopped by PID.
#
#   loadtests/measure-stored-sessions.sh [counts] [resumes] [concurrency]
#   loadtests/measure-stored-sessions.sh "20000 100000" 20000 64
#   PG=1 loadtests/measure-stored-sessions.sh "100000"          # on a throwaway PostgreSQL 15 instead of SQLite
#
# Two measurements per N:
#  1. Broker.Node as its own process on a store seeded with N sessions: seconds from process start to "Broker ready"
#     (the MQTT listener is open) and its resident memory then.
#  2. `Broker.LoadTests stored-sessions N K C`: a node hosted in the runner's process (its managed heap read exactly
#     after a full GC): heap per stored session at rest, K resumes from C concurrent clients (resumes/s), heap per
#     offline session while in memory and after passivation (Sessions:PassivateAfterSeconds=5).
# Stored sessions are written by StoredSessionSeeder: the journal events, topic subscribers and index rows the
# broker writes for CONNECT + SUBSCRIBE + DISCONNECT, through the same journal plugin and serializer.
set -u
cd "$(dirname "$0")/.."
COUNTS=${1:-"20000 100000"}
RESUMES=${2:-20000}
CONC=${3:-64}
dotnet build -c Release Broker.Node -v q -nologo > /dev/null || exit 1
dotnet build -c Release loadtests/Broker.LoadTests -v q -nologo > /dev/null || exit 1
RUNNER="dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"
NODE="dotnet Broker.Node/bin/Release/net10.0/Broker.Node.dll"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PGDIR=""; PGPORT=""
stop_pg() { [ -n "$PGDIR" ] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDIR/data" -m fast stop > /dev/null; }
trap stop_pg EXIT
if [ "${PG:-0}" = 1 ]; then
  PGDIR=$(mktemp -d); chown postgres:postgres "$PGDIR"; PGPORT=$(free_port)
  runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --no-instructions > /dev/null
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDIR/data" -l "$PGDIR/pg.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=on" -w start > /dev/null || exit 1
fi

for n in $COUNTS; do
  echo "== $n stored sessions ($([ -n "$PGDIR" ] && echo "PostgreSQL 15" || echo SQLite)) =="
  dir=$(mktemp -d /tmp/stored-sessions.XXXX)
  storage=(); conn=""
  if [ -n "$PGDIR" ]; then
    db="s$n$$"; psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "create database $db" || exit 1
    conn="Host=127.0.0.1;Port=$PGPORT;Database=$db;Username=postgres"
    storage=(--Storage:Provider=postgresql "--Storage:ConnectionString=$conn")
  fi
  t0=$(date +%s.%N)
  $RUNNER stored-sessions-seed "$dir" "$n" ${conn:+"$conn"} || exit 1
  echo "seeded in $(echo "$(date +%s.%N) - $t0" | bc) s"
  mport=$(free_port); cport=$(free_port)
  t0=$(date +%s.%N)
  $NODE --Mqtt:Port=$mport --Cluster:Port=$cport --Node:DataDir=$dir "${storage[@]}" > "$dir.log" 2>&1 &
  pid=$!
  for i in $(seq 1 1200); do grep -q "Broker ready" "$dir.log" && break; kill -0 $pid 2> /dev/null || break; sleep 0.05; done
  t1=$(date +%s.%N)
  if grep -q "Broker ready" "$dir.log"; then
    sleep 1
    echo "Broker.Node process: ready $(echo "$t1 - $t0" | bc) s after start; RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' /proc/$pid/status)"
    grep -o "Storage: loaded.*" "$dir.log"
  else
    echo "Broker.Node did not get ready: $(tail -3 "$dir.log")"
  fi
  kill -TERM $pid; wait $pid 2> /dev/null # SIGINT is ignored by background jobs of a script
  rm -rf "$dir" "$dir.log"
  [ -n "$PGDIR" ] && psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "drop database $db"
  if [ -n "$PGDIR" ]; then
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "create database ${db}p" || exit 1
    $RUNNER stored-sessions "$n" "$RESUMES" "$CONC" "Host=127.0.0.1;Port=$PGPORT;Database=${db}p;Username=postgres"
    psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "drop database ${db}p"
  else
    $RUNNER stored-sessions "$n" "$RESUMES" "$CONC"
  fi
done
