#!/usr/bin/env bash
# A local three-node broker cluster on 127.0.0.1: a throwaway PostgreSQL (port 55432, data under .run/) and three
# Broker.Node processes (MQTT 1883/1884/1885, MQTT over WebSocket ws://127.0.0.1:8083/mqtt, 8084, 8085, remoting
# 4053/4054/4055, seed 4053, MQTT over TLS 8883-8885 and wss://127.0.0.1:8443/mqtt (8444, 8445) with a self-signed
# certificate for 127.0.0.1 made at "up" (.run/tls/server.pem, the file clients trust), operations endpoint and dashboard http://127.0.0.1:9101/dashboard, 9102, 9103 with a
# management token made at "up" and kept in the state folder), configured by node1..3.json.
#   local-cluster.sh up     start everything, wait until every node is ready and the cluster has 3 members Up
#   local-cluster.sh down   stop exactly what "up" started (node PIDs from .run/state, then PostgreSQL)
# The ports and the state folder can be moved (the test of this script runs it on free ports, beside a user's cluster):
#   LOCAL_CLUSTER_MQTT_PORTS=a,b,c  LOCAL_CLUSTER_WS_PORTS=a,b,c  LOCAL_CLUSTER_METRICS_PORTS=a,b,c
#   LOCAL_CLUSTER_TLS_PORTS=a,b,c  LOCAL_CLUSTER_WSS_PORTS=a,b,c
#   LOCAL_CLUSTER_REMOTING_PORTS=x,y,z  LOCAL_CLUSTER_PG_PORT=p  LOCAL_CLUSTER_RUN_DIR=dir
# The number of MQTT ports is the number of nodes (one or more; node N takes nodeN.json, or node1.json beyond node3,
# with its ports and folder from these variables). When LOCAL_CLUSTER_MQTT_PORTS is given, the WebSocket, TLS, wss and
# operations ports default to none (those listeners stay off unless their variable names ports).
# LOCAL_CLUSTER_BUILD=0 skips the build (the caller built already).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
run="${LOCAL_CLUSTER_RUN_DIR:-$here/.run}"
state="$run/state"
pg_port="${LOCAL_CLUSTER_PG_PORT:-55432}"
IFS=, read -r -a mqtt_ports <<<"${LOCAL_CLUSTER_MQTT_PORTS:-1883,1884,1885}"
# The fixed cluster opens every listener; a cluster on moved ports opens only those whose ports are given.
if [ -z "${LOCAL_CLUSTER_MQTT_PORTS:-}" ]; then fixed=1; else fixed=""; fi
IFS=, read -r -a ws_ports <<<"${LOCAL_CLUSTER_WS_PORTS:-${fixed:+8083,8084,8085}}"
IFS=, read -r -a tls_ports <<<"${LOCAL_CLUSTER_TLS_PORTS:-${fixed:+8883,8884,8885}}"
IFS=, read -r -a wss_ports <<<"${LOCAL_CLUSTER_WSS_PORTS:-${fixed:+8443,8444,8445}}"
IFS=, read -r -a metrics_ports <<<"${LOCAL_CLUSTER_METRICS_PORTS:-${fixed:+9101,9102,9103}}"
IFS=, read -r -a remoting_ports <<<"${LOCAL_CLUSTER_REMOTING_PORTS:-4053,4054,4055}"
count=${#mqtt_ports[@]}
nodes=$(seq "$count")
if [ "$count" -lt 1 ] || [ "${#remoting_ports[@]}" -ne "$count" ]; then
  echo "LOCAL_CLUSTER_MQTT_PORTS ($count ports) and LOCAL_CLUSTER_REMOTING_PORTS (${#remoting_ports[@]}) must name one port per node" >&2
  exit 2
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
node_dll="$repo/Broker.Node/bin/Release/net10.0/Broker.Node.dll"
conn="Host=127.0.0.1;Port=$pg_port;Database=broker;Username=postgres"

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# node<N>.json -> --Section:Key=value flags (arrays as Section:Key:0=...), the form Broker.Node reads.
flags() {
  python3 - "$1" <<'PY'
import json, sys
def walk(prefix, v):
    if isinstance(v, dict):
        for k, x in v.items(): yield from walk(f"{prefix}:{k}" if prefix else k, x)
    elif isinstance(v, list):
        for i, x in enumerate(v): yield from walk(f"{prefix}:{i}", x)
    else:
        yield f"--{prefix}={v}"
print("\n".join(walk("", json.load(open(sys.argv[1])))))
PY
}

wait_for() { # seconds, description, command...
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out after ${limit}s waiting for $what" >&2; return 1
}

up() {
  if [ -f "$state" ]; then echo "already up (see $state); run '$0 down' first" >&2; exit 1; fi
  # A start that fails halfway (a node that never joins) stops what it had started, so nothing is left running.
  trap 'rc=$?; if [ $rc -ne 0 ] && [ -f "$state" ]; then echo "up failed; the nodes said last:" >&2; tail -n 4 "$run"/node*.log >&2; echo "stopping what it started" >&2; down >&2; fi' EXIT
  [ -n "$pg_bin" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  mkdir -p "$run"
  if [ "${LOCAL_CLUSTER_BUILD:-1}" != 0 ]; then
    echo "building Broker.Node (Release) ..."
    dotnet build -c Release -v q --nologo "$repo/Broker.Node" >"$run/build.log" 2>&1 || { cat "$run/build.log"; exit 1; }
  fi

  rm -rf "$run/pg"; mkdir -p "$run/pg"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$run/pg"
  as_postgres "$pg_bin/initdb" -D "$run/pg/data" -U postgres --auth=trust -E UTF8 --no-instructions >"$run/pg-init.log"
  # The port can be taken for a while: 55432 lies in the ephemeral range, so after a run with many client connections
  # (the load runner's connect storm) a client socket may still hold it. Retry for up to 60 s.
  local started=""
  for _ in $(seq 30); do
    if as_postgres "$pg_bin/pg_ctl" -D "$run/pg/data" -l "$run/pg/postgres.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $run/pg" start >/dev/null 2>&1 9>&-; then started=1; break; fi
    grep -q "Address already in use" "$run/pg/postgres.log" 2>/dev/null || break
    sleep 2
  done
  [ -n "$started" ] || { echo "PostgreSQL did not start on port $pg_port:" >&2; tail -n 5 "$run/pg/postgres.log" >&2; exit 1; }
  echo "pg_data=$run/pg/data" >"$state"
  psql -h 127.0.0.1 -p $pg_port -U postgres -qc 'create database broker' >/dev/null

  # The management API and dashboard need a token: a fresh random one per "up", readable only here.
  token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  (umask 077 && echo "$token" >"$run/management-token")
  # TLS and wss: a self-signed certificate for 127.0.0.1 and localhost, which clients trust as their CA file.
  mkdir -p "$run/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$run/tls/server.key" -out "$run/tls/server.pem" 2>/dev/null
  for i in $nodes; do
    config="$here/node$i.json"; [ -f "$config" ] || config="$here/node1.json"
    mapfile -t args < <(flags "$config")
    # 9>&-: callers hold /tmp/broker-fixed-ports.lock on fd 9; a node must not inherit it and keep it after they exit.
    # The node<N>.json values, then the ports and folder of this run (a later flag wins).
    args+=("--Mqtt:Port=${mqtt_ports[i-1]}" "--Cluster:Port=${remoting_ports[i-1]}" "--Node:DataDir=$run/node$i"
      "--Cluster:SeedNodes:0=akka.tcp://broker@127.0.0.1:${remoting_ports[0]}" "--Storage:ConnectionString=$conn")
    [ -n "${ws_ports[i-1]:-}" ] && args+=("--Mqtt:WebSocket:Port=${ws_ports[i-1]}")
    [ -n "${metrics_ports[i-1]:-}" ] && args+=("--Metrics:Port=${metrics_ports[i-1]}")
    if [ -n "${tls_ports[i-1]:-}" ] || [ -n "${wss_ports[i-1]:-}" ]; then
      args+=("--Mqtt:Tls:Certificate=$run/tls/server.pem" "--Mqtt:Tls:Key=$run/tls/server.key")
      [ -n "${tls_ports[i-1]:-}" ] && args+=("--Mqtt:Tls:Port=${tls_ports[i-1]}")
      [ -n "${wss_ports[i-1]:-}" ] && args+=("--Mqtt:WebSocket:TlsPort=${wss_ports[i-1]}")
    fi
    # The token goes by environment, not by flag: flags show in every process listing. The management API is served
    # on the operations port, so a node without one gets no token.
    token_env=()
    [ -n "${metrics_ports[i-1]:-}" ] && token_env=("BROKER__MANAGEMENT__TOKEN=$token")
    (cd "$here" && exec env "${token_env[@]}" dotnet "$node_dll" "${args[@]}") >"$run/node$i.log" 2>&1 9>&- &
    echo "node$i=$!" >>"$state"
    # Node 1 is the seed: the others can join only once it is up.
    [ $i = 1 ] && wait_for 90 "node1 ready" grep -q "Broker ready" "$run/node1.log"
  done
  for i in $nodes; do wait_for 90 "node$i ready" grep -q "Broker ready" "$run/node$i.log"; done
  # Every node but the seed must have joined node 1's cluster (Akka logs "Welcome from" on the joining node), and the
  # leader must have moved every member to Up.
  for i in $(seq 2 "$count"); do wait_for 60 "node$i to join node1" grep -q "Welcome from" "$run/node$i.log"; done
  # The leader is the member with the lowest address, which need not be node 1 when the ports are moved: read every log.
  wait_for 120 "$count members Up" bash -c "[ \$(cat '$run'/node*.log | grep -o 'Leader is moving node \[[^]]*\] to \[Up\]' | sort -u | wc -l) -ge $count ]"

  echo "cluster up:"
  for i in $nodes; do
    pid=$(grep "^node$i=" "$state" | cut -d= -f2)
    echo "  node$i  mqtt://127.0.0.1:${mqtt_ports[i-1]}${ws_ports[i-1]:+  ws://127.0.0.1:${ws_ports[i-1]}/mqtt}${wss_ports[i-1]:+  wss://127.0.0.1:${wss_ports[i-1]}/mqtt}${tls_ports[i-1]:+  mqtts://127.0.0.1:${tls_ports[i-1]}}  akka.tcp://broker@127.0.0.1:${remoting_ports[i-1]}  pid $pid  log $run/node$i.log"
  done
  echo "  tls        certificate (trust it as the CA file) $run/tls/server.pem"
  if [ ${#metrics_ports[@]} -gt 0 ]; then
    echo "  dashboard  http://127.0.0.1:${metrics_ports[0]}/dashboard (each node on its own Metrics:Port: ${metrics_ports[*]}); management token in $run/management-token"
  fi
  echo "  postgresql 127.0.0.1:$pg_port database broker (data $run/pg/data)"
  echo "state: $state"
}

down() {
  [ -f "$state" ] || { echo "not up (no $state)"; exit 0; }
  for pid in $(grep '^node' "$state" | cut -d= -f2); do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then echo "pid $pid did not stop in 30 s; SIGKILL"; kill -KILL "$pid"; fi
      echo "stopped pid $pid"
    fi
  done
  pg_data=$(grep '^pg_data=' "$state" | cut -d= -f2)
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop >/dev/null && echo "stopped postgresql ($pg_data)"
  fi
  rm -rf "$run"
  echo "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
