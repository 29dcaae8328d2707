#!/usr/bin/env bash
# What an idle node costs. Starts a fresh local cluster of NODES Broker.Node processes (cluster-config/local-cluster.sh
# on free ports: one throwaway PostgreSQL shared by the nodes, node 1 the seed), connects no client, and prints each
# node's CPU use (utime+stime from /proc, as % of one core) for consecutive windows of WINDOW seconds after the last
# node is ready, together with the part of it spent by the runtime's tiered-compilation thread (".NET Tiered Com":
# methods of start-up and of the first timer rounds compiled again, optimized, in the background). That part falls
# to zero within a minute or two; what remains is what an idle node costs for as long as it stays idle.
#
#   loadtests/measure-idle.sh                    # NODES=3 WINDOW=30 WINDOWS=5
#   NODES=1 WINDOWS=3 loadtests/measure-idle.sh
#
# Environment: NODES node count [3], WINDOW seconds per window [30], WINDOWS number of windows [5], BUILD 1 | 0 build
# Broker.Node (Release) first [1]; other variables pass through to the nodes (BROKER__..., DOTNET_...).
# The compilation thread's share is a lower bound: the runtime ends that thread when it has been idle a few seconds,
# and the CPU of a thread that ended within a window is counted in the node's total only.
# Every process started here (the nodes, PostgreSQL) is stopped by PID when the script ends, also on failure or signal.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cluster="$repo/cluster-config/local-cluster.sh"
nodes=${NODES:-3} window=${WINDOW:-30} windows=${WINDOWS:-5} build=${BUILD:-1}
fail() { echo "measure-idle: $*" >&2; exit 2; }
[[ $nodes =~ ^[1-9]$ ]] || fail "NODES = '$nodes': a node count from 1 to 9"
[[ $window =~ ^[1-9][0-9]*$ ]] && [ "$window" -le 600 ] || fail "WINDOW = '$window': seconds, from 1 to 600"
[[ $windows =~ ^[1-9][0-9]*$ ]] && [ "$windows" -le 100 ] || fail "WINDOWS = '$windows': from 1 to 100"
[[ $build =~ ^[01]$ ]] || fail "BUILD = '$build': 1 or 0"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run_dir=$(mktemp -d /tmp/measure-idle.XXXXXX)
chmod 755 "$run_dir" # PostgreSQL runs as its own user and must reach its data folder inside
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -f "$run_dir/state" ] && LOCAL_CLUSTER_RUN_DIR="$run_dir" "$cluster" down >>"$run_dir/cluster.log" 2>&1
  rm -rf "$run_dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$build" = 1 ]; then
  dotnet build -c Release -v q --nologo "$repo/Broker.Node" >"$run_dir/build.log" 2>&1 || { cat "$run_dir/build.log" >&2; exit 1; }
fi
mqtt=() remoting=()
for _ in $(seq "$nodes"); do mqtt+=("$(free_port)"); remoting+=("$(free_port)"); done
LOCAL_CLUSTER_RUN_DIR="$run_dir" LOCAL_CLUSTER_BUILD=0 LOCAL_CLUSTER_PG_PORT=$(free_port) \
  LOCAL_CLUSTER_MQTT_PORTS=$(IFS=,; echo "${mqtt[*]}") LOCAL_CLUSTER_REMOTING_PORTS=$(IFS=,; echo "${remoting[*]}") \
  "$cluster" up >"$run_dir/cluster.log" 2>&1 || { echo "the cluster did not start:" >&2; tail -n 12 "$run_dir/cluster.log" >&2; exit 1; }
mapfile -t pids < <(grep '^node' "$run_dir/state" | cut -d= -f2)
echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores;" \
  "$nodes node(s) ready, pids ${pids[*]}; $windows windows of $window s, no clients; folder $run_dir (removed at the end)"

python3 - "$window" "$windows" "${pids[@]}" <<'PY'
import os, sys, time
window, windows, pids = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
tck = os.sysconf("SC_CLK_TCK")
def ticks(path):
    s = open(path).read()
    f = s[s.rindex(")") + 2:].split()
    return s[s.index("(") + 1:s.rindex(")")], int(f[11]) + int(f[12])
def snap(pid):
    jit = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            name, cpu = ticks(f"/proc/{pid}/task/{t}/stat")
        except OSError:
            continue
        if name.startswith(".NET Tiered"):
            jit[t] = cpu
    return ticks(f"/proc/{pid}/stat")[1], jit
print("| seconds after ready | " + " | ".join(f"node {i + 1}" for i in range(len(pids))) + " | mean | of which tiered compilation (mean) | load average |")
print("|---|" + "---|" * len(pids) + "---|---|---|")
before = [snap(p) for p in pids]
for w in range(windows):
    time.sleep(window)
    after = [snap(p) for p in pids]
    totals = [(a[0] - b[0]) / tck / window * 100 for a, b in zip(after, before)]
    jits = [sum(c - b[1].get(t, 0) for t, c in a[1].items()) / tck / window * 100 for a, b in zip(after, before)]
    mean, jit = sum(totals) / len(totals), sum(jits) / len(jits)
    load = open("/proc/loadavg").read().split()[0]
    print(f"| {w * window}-{(w + 1) * window} | " + " | ".join(f"{t:.1f} %" for t in totals) + f" | {mean:.2f} % | {jit:.2f} % | {load} |", flush=True)
    before = after
PY
