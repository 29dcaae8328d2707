#!/usr/bin/env bash
# Runs every test of the solution on a fresh machine: installs the Debian packages the interop tests drive
# (mosquitto-clients, python3-paho-mqtt, nodejs/npm for MQTT.js, chromium for the browser specs), the durability
# specs need (postgresql) and the fault-injection specs need (iproute2, iptables) when they are missing, MQTT.js from
# Broker.Tests/WebSocket/js/package-lock.json, builds,
# runs the tests, and prints one summary line "N passed, M failed" read from the TRX results. Exit code: 0 only
# when nothing failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

missing=()
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || missing+=(python3-paho-mqtt)
# The durability specs start a throwaway PostgreSQL server of their own (initdb + pg_ctl), never the system's.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
# The fault-injection specs put nodes in network namespaces (ip netns, veth, bridge) and cut links with iptables.
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
[ -x /usr/sbin/iptables ] || missing+=(iptables)
# MQTT.js runs on Node; the browser specs drive Debian's Chromium (a browser download is not reachable).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# local-cluster.sh makes a TLS certificate with openssl.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "Installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The Debian mosquitto and postgresql packages start services (1883, 5432); tests use their own ports and their
    # own PostgreSQL data directory, but leave the machine as it was.
    if command -v systemctl >/dev/null 2>&1; then
      for service in mosquitto postgresql; do
        if [[ " ${missing[*]} " == *" $service "* ]]; then systemctl stop "$service" >/dev/null 2>&1 || true; fi
      done
    fi
  else
    echo "Missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
    exit 1
  fi
fi

# MQTT.js (npm "mqtt", pinned by package-lock.json) for the Node and browser WebSocket specs.
js="$root/Broker.Tests/WebSocket/js"
if [ ! -f "$js/node_modules/mqtt/package.json" ]; then
  echo "Installing MQTT.js in $js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi

results="$root/TestResults"
rm -rf "$results"
status=0
dotnet test "$root/Cluster.sln" -c Release --logger "trx;LogFileName=results.trx" --results-directory "$results" "$@" || status=$?

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(echo "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p'); f=$(echo "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
echo "${passed} passed, ${failed} failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
