#!/usr/bin/env bash
# Fault injection, long form: Broker.Node processes each in its own network namespace (veth pairs to a bridge on a
# free 10.213.S.0/24), one throwaway PostgreSQL in the root namespace, persistent QoS 1 and QoS 2 publishers and
# subscribers on every node, and a random mix of faults under a fixed seed, each held for a while, then healed and
# checked: nothing acknowledged lost, QoS 2 exactly once, per-publisher order, one owner per client id.
#
#   cluster-config/fault-injection.sh [seed] [rounds] [hold-seconds] [nodes]     # defaults 1 6 20 5
#
# Faults drawn: one node partitioned (both ways / inbound only), the cluster split in halves (3+2 with five nodes),
# one node cut off from PostgreSQL, SIGSTOP + SIGCONT, kill -9 + restart of one node, kill -9 + restart of all.
# BROKER_FAULT_ONLY=k draws only fault k (0 partition both ways, 1 inbound only, 2 halves, 3 PostgreSQL cut, 4 pause,
# 5 kill -9, 6 whole-cluster restart); BROKER_FAULT_VICTIM=n picks the node of a partition (0) or a pause (4);
# BROKER_FAULT_NODE_ARGS="--Key=value ..." gives every node extra flags (e.g. --Storage:LeaveAfter=0 to compare).
# Each node runs under a restart-on-exit supervisor (like systemd Restart=always). Prints one results row per fault
# (the table of docs/faults.md) and writes the rows to cluster-config/.run/faults-<seed>.md, the logs of every
# node to cluster-config/.run/fault-logs/. Needs root (network namespaces), iproute2, iptables, PostgreSQL
# server binaries; everything it creates (namespaces, bridge, processes, PostgreSQL) is removed at the end, and the
# leftovers of a run that was killed are removed at the next start. The short form of each fault runs in the tests
# (Broker.Tests/Faults/FaultSpecs.cs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
seed="${1:-1}"; rounds="${2:-6}"; hold="${3:-20}"; nodes="${4:-5}"
[ "$(id -u)" -eq 0 ] || { echo "fault-injection.sh needs root (ip netns, iptables)" >&2; exit 1; }
missing=()
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
[ -x /usr/sbin/iptables ] || missing+=(iptables)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$here/.run"
report="$here/.run/faults-$seed.md"
rm -f "$report"
echo "seed $seed, $rounds rounds of $hold s, $nodes nodes" >&2
status=0
BROKER_FAULT_MIX=1 BROKER_FAULT_SEED="$seed" BROKER_FAULT_ROUNDS="$rounds" BROKER_FAULT_HOLD="$hold" \
BROKER_FAULT_NODES="$nodes" BROKER_FAULT_REPORT="$report" BROKER_FAULT_LOGS="$here/.run/fault-logs" \
  dotnet test "$repo/Broker.Tests" -c Release --filter "FullyQualifiedName~FaultMixSpecs" \
  --logger "console;verbosity=detailed" || status=$?
echo
echo "| fault | acknowledged | lost | duplicates QoS 1 | duplicates QoS 2 | unavailable, majority side | unavailable, minority side | two owners (samples) | what the minority side did |"
echo "|---|---|---|---|---|---|---|---|---|"
cat "$report" 2>/dev/null || true
exit "$status"
