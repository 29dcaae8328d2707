#!/usr/bin/env bash
# Sessions at scale on one node: start-up time to ready and memory with N stored offline persistent sessions (each
# with one QoS 1 subscription, half exact topics, half wildcard filters), memory per passivated session, and the
# resume rate (clients reconnecting with Clean Start 0). Only 127.0.0.1; every process it starts is stopped by PID.
#
#   loadtests/measure-stored-sessions.sh [counts] [resumes] [concurrency]
#   loadtests/measure-stored-sessions.sh "20000 100000" 20000 64
#   PG=1 loadtests/measure-stored-sessions.sh "100000"          # on a throwaway PostgreSQL 15 instead of SQLite
#   NODES=3 loadtests/measure-stored-sessions.sh "100000" 20000 96   # a cluster of Broker.Node processes (PostgreSQL)
#   NODE_DIR=/tmp/published NODES=1 loadtests/measure-stored-sessions.sh 20000 4000 64  # nodes run from another build
#   DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 TRACE=/tmp/resume.perf NODES=3 loadtests/measure-stored-sessions.sh 20000 4000 96  # + node 1's CPU samples
#
# Two measurements per N:
#  1. Broker.Node as its own process on a store seeded with N sessions: seconds from process start to "Broker ready"
#     (the MQTT listener is open) and its resident memory then.
#  2. `Broker.LoadTests stored-sessions N K C`: a node hosted in the runner's process (its managed heap read exactly
#     after a full GC): heap per stored session at rest, K resumes from C concurrent clients (resumes/s), heap per
#     offline session while in memory and after passivation (Sessions:PassivateAfterSeconds=5).
# With NODES=n (PostgreSQL implied; 1 is a single node measured the same way) the N sessions are seeded, n
# Broker.Node processes started on them (node 1 the seed), each timed to "Broker ready", and `Broker.LoadTests
# stored-sessions-resume` resumes K of them from C clients spread over the n nodes (client i on node i mod n):
# resumes/s in all and per node, and the nodes' CPU per resume (the clients run in their own process). No in-process probe.
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
NODE="dotnet ${NODE_DIR:-Broker.Node/bin/Release/net10.0}/Broker.Node.dll"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

CLUSTER=${NODES:+1}
NODES=${NODES:-1}
[ -n "$CLUSTER" ] && PG=1
PGDIR=""; PGPORT=""
stop_pg() { [ -n "$PGDIR" ] && runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDIR/data" -m fast stop > /dev/null; }
trap stop_pg EXIT
if [ "${PG:-0}" = 1 ]; then
  PGDIR=$(mktemp -d); chown postgres:postgres "$PGDIR"; PGPORT=$(free_port)
  runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --no-instructions > /dev/null
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGDIR/data" -l "$PGDIR/pg.log" \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=on" -w start > /dev/null || exit 1
fi

cpu_ticks() { local t=0 pid; for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo $t; }

cluster() { # n stored sessions on NODES nodes: seed, start, time to ready, resume, stop
  local n=$1 db="c$1$$" dir pids=() ports=() i
  dir=$(mktemp -d /tmp/stored-cluster.XXXX)
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "create database $db" || return 1
  local conn="Host=127.0.0.1;Port=$PGPORT;Database=$db;Username=postgres"
  t0=$(date +%s.%N)
  $RUNNER stored-sessions-seed "$dir/seed" "$n" "$conn" || return 1
  echo "seeded in $(echo "$(date +%s.%N) - $t0" | bc) s"
  local remoting=() ; for i in $(seq 1 "$NODES"); do ports+=("$(free_port)"); remoting+=("$(free_port)"); done
  for i in $(seq 1 "$NODES"); do
    t0=$(date +%s.%N)
    $NODE --Mqtt:Address=127.0.0.1 --Mqtt:Port=${ports[i-1]} --Cluster:Hostname=127.0.0.1 --Cluster:Port=${remoting[i-1]} \
      "--Cluster:SeedNodes:0=akka.tcp://broker@127.0.0.1:${remoting[0]}" --Node:DataDir=$dir/node$i \
      --Storage:Provider=postgresql "--Storage:ConnectionString=$conn" > "$dir/node$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 1200); do grep -q "Broker ready" "$dir/node$i.log" && break; kill -0 "${pids[i-1]}" 2> /dev/null || break; sleep 0.05; done
    if grep -q "Broker ready" "$dir/node$i.log"; then
      echo "node $i: ready $(echo "$(date +%s.%N) - $t0" | bc) s after start; $(grep -o "Storage: loaded.*" "$dir/node$i.log")"
    else
      echo "node $i did not get ready: $(tail -3 "$dir/node$i.log")"
    fi
  done
  # every node Up (the leader logs each move to Up)
  for _ in $(seq 1 600); do [ "$(cat "$dir"/node*.log | grep -o 'Leader is moving node \[[^]]*\] to \[Up\]' | sort -u | wc -l)" -ge "$NODES" ] && break; sleep 0.1; done
  sleep 2
  local before=$(cpu_ticks "${pids[@]}") tracer=""
  if [ -n "${TRACE:-}" ]; then # TRACE=perf.data: node 1's CPU samples over 10 s of the resumes, from TRACE_AFTER s on (perf; see line 11)
    (sleep "${TRACE_AFTER:-0}"; perf record -F 499 -g -p "${pids[0]}" -o "$TRACE" -- sleep 10 > /dev/null 2>&1) &
    tracer=$!
  fi
  $RUNNER stored-sessions-resume "$(IFS=,; echo "${ports[*]}")" "$n" "$RESUMES" "$CONC"
  local used=$(( $(cpu_ticks "${pids[@]}") - before ))
  [ -n "$tracer" ] && wait "$tracer"
  echo "broker CPU over the resumes (all nodes, clients not included): $(echo "scale=1; $used * 1000 / $(getconf CLK_TCK)" | bc) ms," \
    "$(echo "scale=2; $used * 1000 / $(getconf CLK_TCK) / $RESUMES" | bc) ms per resume"
  for i in $(seq 1 "$NODES"); do echo "node $i: RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' /proc/${pids[i-1]}/status)"; done
  for pid in "${pids[@]}"; do kill -TERM "$pid"; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null; done
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$dir"/node*.log "$KEEP_LOGS"/; fi
  rm -rf "$dir"
  psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "drop database $db"
}

for n in $COUNTS; do
  if [ -n "$CLUSTER" ]; then
    echo "== $n stored sessions on $NODES nodes (PostgreSQL 15) =="
    cluster "$n"
    continue
  fi
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
