#!/usr/bin/env bash
# Scale-out with every node capped to the same CPU share. For each node count N in NODES, a fresh local cluster of N
# Broker.Node processes (cluster-config/local-cluster.sh on free ports: one throwaway PostgreSQL shared by the nodes,
# seed node 1), each node's process in a cgroup v1 cpu group of its own capped at CPU_PER_NODE cores
# (cpu.cfs_quota_us / cpu.cfs_period_us) and a cpuacct group that counts its CPU; then the load runner's
# point-to-point scenario (loadtests/Broker.LoadTests; SCENARIO picks fan-in or fan-out instead): PAIRS
# publisher/subscriber pairs, subscriber i on node
# i mod N, publishers placed by SPREAD (even: the k-th node after the subscriber's, k cycling, so that about (N-1)/N
# of the pairs have their two clients on different nodes), at QoS 0, QoS 1 with clean sessions and QoS 1 with
# persistent sessions (stored in PostgreSQL). Prints one table: delivered messages/s, the ratio to one node, broker
# CPU-seconds per 100k delivered messages (the nodes' cpuacct.usage over the measured seconds), the nodes' CPU use as a
# share of their caps, and the messages lost (QoS 1: acknowledged to the publisher but never delivered).
#
#   loadtests/measure-scaleout.sh
#   NODES="1 3" CPU_PER_NODE=0.5 DURATION=20 loadtests/measure-scaleout.sh
#
# Environment (defaults in brackets):
#   NODES         node counts to measure, in order ["1 2 3"]      CPU_PER_NODE  cores per node's cgroup [0.4]
#   PAIRS         point-to-point pairs, fan-in publishers [50]    SPREAD        even | cross | same [even]
#   SCENARIO      point-to-point | fan-in (PAIRS publishers spread over the nodes, one wildcard subscriber on node 1) |
#                 fan-out (one publisher on node 2, SUBSCRIBERS subscribers spread over the nodes) [point-to-point]
#   SUBSCRIBERS   fan-out subscribers [100]
#   MODES         q0 (QoS 0), q1 (QoS 1 clean), q1p (QoS 1 persistent) ["q0 q1 q1p"]
#   DURATION      measured seconds per mode [10]                  WARMUP        warm-up seconds per mode [3]
#   RATE          batches of 100 messages per second, offered at that fixed rate (the runner's inject:RATE), instead
#                 of every client publishing as fast as the broker takes them; a rate the nodes carry without
#                 dropping measures CPU per message away from overload (fan-out: publishes x SUBSCRIBERS deliveries) []
#   DRAIN         seconds to wait for owed messages after the load; what has not arrived then counts as lost [15]
#   IDLE_FIRST    seconds the fresh nodes stay idle before the first mode: the runtime compiles the start-up code
#                 again, optimized, in the background for a minute or two (about 7 % of a core per node in the first
#                 30 s), which otherwise falls into the first measurements, once per node [0]
#   CGROUPS       on | off: off measures uncapped, CPU from /proc (only where cgroup v1 cpu is not mounted) [on]
#   BUILD         1 | 0: build Broker.Node and the runner (Release) first [1]
#   SETTLE_MAX    before each mode, wait at most this long for the nodes to fall idle (under 1/4 of their caps) [90]
#   OUT           folder for logs and reports [loadtests/reports/scaleout-<time>]
#   TABLE_ONLY    a results.tsv of an earlier run (in its OUT): print its table again and stop
# Needs root (cgroups, and PostgreSQL's initdb runs as the postgres user). Load goes only to 127.0.0.1; every node,
# the PostgreSQL server and the runner started here are stopped by PID and the cgroups removed when the script ends,
# by success, failure or SIGINT/SIGTERM. Exit code 0 when every run produced a report, 1 otherwise.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cluster="$repo/cluster-config/local-cluster.sh"
runner_dll="$repo/loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll"

nodes_list=${NODES:-1 2 3}
cpu_per_node=${CPU_PER_NODE:-0.4}
pairs=${PAIRS:-50}
spread=${SPREAD:-even}
scenario=${SCENARIO:-point-to-point}
subscribers=${SUBSCRIBERS:-100}
modes=${MODES:-q0 q1 q1p}
duration=${DURATION:-10}
warmup=${WARMUP:-3}
drain=${DRAIN:-15}
cgroups=${CGROUPS:-on}
build=${BUILD:-1}
settle_max=${SETTLE_MAX:-90}
rate=${RATE:-}
idle_first=${IDLE_FIRST:-0}
out=${OUT:-$repo/loadtests/reports/scaleout-$(date -u +%Y%m%d-%H%M%S)}

fail() { echo "measure-scaleout: $*" >&2; exit 2; }
is_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
for n in $nodes_list; do is_int "$n" && [ "$n" -le 9 ] || fail "NODES = '$nodes_list': each must be a node count from 1 to 9"; done
[ -n "$nodes_list" ] || fail "NODES is empty"
[[ $cpu_per_node =~ ^[0-9]*\.?[0-9]+$ ]] && awk -v c="$cpu_per_node" 'BEGIN { exit !(c >= 0.01 && c <= 64) }' ||
  fail "CPU_PER_NODE = '$cpu_per_node': cores per node, from 0.01 to 64"
is_int "$pairs" && [ "$pairs" -le 1000 ] || fail "PAIRS = '$pairs': from 1 to 1000"
[[ $spread =~ ^(even|cross|same)$ ]] || fail "SPREAD = '$spread': one of even, cross, same"
[[ $scenario =~ ^(point-to-point|fan-in|fan-out)$ ]] || fail "SCENARIO = '$scenario': one of point-to-point, fan-in, fan-out"
is_int "$subscribers" && [ "$subscribers" -le 10000 ] || fail "SUBSCRIBERS = '$subscribers': from 1 to 10000"
for m in $modes; do [[ $m =~ ^(q0|q1|q1p)$ ]] || fail "MODES = '$modes': each one of q0, q1, q1p"; done
is_int "$duration" && [ "$duration" -le 600 ] || fail "DURATION = '$duration': seconds, from 1 to 600"
[[ $warmup =~ ^[0-9]+$ ]] && [ "$warmup" -le 120 ] || fail "WARMUP = '$warmup': seconds, from 0 to 120"
[[ $drain =~ ^[0-9]+$ ]] && [ "$drain" -le 300 ] || fail "DRAIN = '$drain': seconds, from 0 to 300"
[[ $cgroups =~ ^(on|off)$ ]] || fail "CGROUPS = '$cgroups': on or off"
[[ $build =~ ^[01]$ ]] || fail "BUILD = '$build': 1 or 0"
[[ $settle_max =~ ^[0-9]+$ ]] && [ "$settle_max" -le 600 ] || fail "SETTLE_MAX = '$settle_max': seconds, from 0 to 600"
[[ $idle_first =~ ^[0-9]+$ ]] && [ "$idle_first" -le 600 ] || fail "IDLE_FIRST = '$idle_first': seconds, from 0 to 600"
[ -z "$rate" ] || { is_int "$rate" && [ "$rate" -le 100000 ]; } || fail "RATE = '$rate': batches per second, from 1 to 100000"

# The table of a results file (one line per run: nodes, mode, rate, CPU-s per 100k, % of cap, lost, crossing pairs,
# runner cores, errors, status). "At full caps" = N x cap / CPU per message: the rate the nodes would reach if each got
# its whole cap at the CPU per message measured. It stays comparable when the machine's other load kept the nodes
# below their caps, where the delivered rate does not.
print_table() { # results-file on|off cap
  python3 - "$@" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
capped, cap = sys.argv[2] == "on", float(sys.argv[3])
names = {"q0": "0", "q1": "1 clean", "q1p": "1 persistent"}
def full(r): return int(r[0]) * cap * 1e5 / float(r[3]) if capped and float(r[3]) > 0 else None
base = {r[1]: float(r[2]) for r in rows if r[0] == "1"}
base_full = {r[1]: full(r) for r in rows if r[0] == "1"}
print()
print("| nodes | QoS | delivered msg/s | ratio to 1 node | msg/s at full caps | ratio at full caps "
      "| broker CPU-s per 100k delivered | node CPU used, % of cap | pairs crossing nodes "
      "| lost (QoS 1: acknowledged, never delivered) | runner cores | run |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    n, mode, rate, per100k, share, lost, crossing, runner, errors, status = r
    rate = float(rate)
    ratio = f"{rate / base[mode]:.2f}x" if mode in base and base[mode] > 0 else "-"
    f = full(r)
    at_full = f"{f:,.0f}" if f else "-"
    ratio_full = f"{f / base_full[mode]:.2f}x" if f and base_full.get(mode) else "-"
    cpu = f"{float(per100k):.2f}" if float(per100k) >= 0 else "-"
    share = f"{share} %" if capped and float(share) >= 0 else "-"
    lost = f"{int(lost):,}" + (" (QoS 0, sent)" if mode == "q0" and int(lost) > 0 else "")
    status = status if errors == "0" else f"{status}, {errors} errors"
    print(f"| {n} | {names[mode]} | {rate:,.0f} | {ratio} | {at_full} | {ratio_full} | {cpu} | {share} | {crossing} | {lost} | {runner} | {status} |")
PY
}
if [ -n "${TABLE_ONLY:-}" ]; then print_table "$TABLE_ONLY" "$cgroups" "$cpu_per_node"; exit 0; fi

# The mount point of a cgroup v1 controller (cpu, cpuacct; they may share one mount such as cpu,cpuacct).
cgroup_root() {
  awk -v c="$1" '$3 == "cgroup" { n = split($4, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $2; exit } }' /proc/self/mounts
}
if [ "$cgroups" = on ]; then
  cpu_root=$(cgroup_root cpu); acct_root=$(cgroup_root cpuacct)
  [ -n "$cpu_root" ] && [ -f "$cpu_root/cpu.cfs_quota_us" ] ||
    fail "the cgroup v1 cpu controller is not mounted (mount | grep cgroup); CGROUPS=off measures without caps"
  [ -n "$acct_root" ] && [ -f "$acct_root/cpuacct.usage" ] || fail "the cgroup v1 cpuacct controller is not mounted"
  [ -w "$cpu_root" ] && [ -w "$acct_root" ] || fail "cannot create cgroups under $cpu_root and $acct_root (run as root)"
fi
mkdir -p "$out"
results="$out/results.tsv"
: >"$results"

# What this script started, for the cleanup: the cluster's state folder (its nodes and PostgreSQL are stopped by
# local-cluster.sh down, by PID), the cgroups, and a child still running (local-cluster.sh up, the runner).
run_dir="" child="" made_cgroups=()
exec 3>&1 4>&2 # the script's own output: a signal may arrive while a child's output is redirected to a log
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  exec 1>&3 2>&4
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  child=""
  if [ -n "$run_dir" ] && [ -d "$run_dir" ]; then
    LOCAL_CLUSTER_RUN_DIR="$run_dir" "$cluster" down >>"$out/cluster.log" 2>&1 || echo "local-cluster.sh down failed (see $out/cluster.log)" >&2
  fi
  run_dir=""
  remove_cgroups
  exit "$rc"
}
remove_cgroups() {
  local g
  for g in ${made_cgroups[@]+"${made_cgroups[@]}"}; do
    # A group can be removed once its processes are gone; the nodes were just stopped, give the kernel a moment.
    for _ in $(seq 50); do [ -d "$g" ] || break; rmdir "$g" 2>/dev/null && break; sleep 0.1; done
    if [ -d "$g" ]; then echo "could not remove cgroup $g (tasks: $(tr '\n' ' ' <"$g/cgroup.procs"))" >&2; else echo "removed cgroup $g"; fi
  done
  made_cgroups=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that a signal to this script is handled at once (bash runs
# traps only between foreground commands) and the cleanup can stop the child.
run_child() { "$@" & child=$!; local rc=0; wait "$child" || rc=$?; child=""; return $rc; }

# CPU-seconds used so far by the nodes: their cpuacct groups, or (CGROUPS=off) their /proc utime+stime.
nodes_cpu() {
  if [ ${#acct_dirs[@]} -gt 0 ]; then
    cat "${acct_dirs[@]/%//cpuacct.usage}" | awk '{ s += $1 } END { printf "%.3f\n", s / 1e9 }'
  else
    local p; for p in "${pids[@]}"; do sed 's/^.*) //' "/proc/$p/stat"; done | awk -v t="$(getconf CLK_TCK)" '{ s += $12 + $13 } END { printf "%.3f\n", s / t }'
  fi
}

# Waits (at most SETTLE_MAX seconds) until the nodes are nearly idle: under a quarter of their caps (uncapped: 0.1 core
# per node) over a second. A run that overloads them (QoS 0 publishers outpace capped nodes) leaves work queued
# behind it, which would otherwise fall into the next run's set-up and measurement.
settle() {
  local budget a b used waited=0
  budget=$(awk -v n="$n" -v c="$cpu_per_node" -v on="$cgroups" 'BEGIN { print (on == "on" ? n * c / 4 : n * 0.1) }')
  while :; do
    a=$(nodes_cpu); sleep 1; b=$(nodes_cpu); waited=$((waited + 1))
    used=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b - a }')
    awk -v u="$used" -v m="$budget" 'BEGIN { exit !(u < m) }' && { echo "   settled after ${waited} s (nodes used $used core)"; return 0; }
    [ "$waited" -lt "$settle_max" ] || { echo "   still busy after ${waited} s (nodes used $used core); measuring anyway"; return 0; }
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ "$build" = 1 ]; then
  echo "building Broker.Node and the load runner (Release) ..."
  { dotnet build -c Release -v q --nologo "$repo/Broker.Node" && dotnet build -c Release -v q --nologo "$repo/loadtests/Broker.LoadTests"; } \
    >"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; exit 1; }
fi
[ -f "$runner_dll" ] || fail "no runner at $runner_dll (BUILD=1 or dotnet build -c Release Cluster.sln)"

echo "commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); nodes ${nodes_list// /,};" \
  "cap $( [ "$cgroups" = on ] && echo "$cpu_per_node core per node" || echo "none (CGROUPS=off)"); $scenario: $( case $scenario in point-to-point) echo "$pairs pairs, spread $spread" ;; fan-in) echo "$pairs publishers, 1 wildcard subscriber" ;; *) echo "1 publisher, $subscribers subscribers" ;; esac );" \
  "${warmup} s warm-up + ${duration} s measured per mode${rate:+, offered $rate batches of 100 per second}; logs $out" | tee "$out/header.txt"
failed=0
for n in $nodes_list; do
  mqtt=() remoting=()
  for _ in $(seq "$n"); do mqtt+=("$(free_port)"); remoting+=("$(free_port)"); done
  run_dir="$out/cluster-$n"
  export LOCAL_CLUSTER_RUN_DIR="$run_dir" LOCAL_CLUSTER_BUILD=0 LOCAL_CLUSTER_PG_PORT
  LOCAL_CLUSTER_PG_PORT=$(free_port)
  LOCAL_CLUSTER_MQTT_PORTS=$(IFS=,; echo "${mqtt[*]}") LOCAL_CLUSTER_REMOTING_PORTS=$(IFS=,; echo "${remoting[*]}") \
    run_child "$cluster" up >>"$out/cluster.log" 2>&1 || { echo "the $n-node cluster did not start:" >&2; tail -n 12 "$out/cluster.log" >&2; exit 1; }
  mapfile -t pids < <(grep '^node' "$run_dir/state" | cut -d= -f2)
  pg_data=$(grep '^pg_data=' "$run_dir/state" | cut -d= -f2)
  echo "== $n node(s) up: postgresql pid $(head -1 "$pg_data/postmaster.pid")"
  acct_dirs=()
  for i in $(seq "$n"); do
    pid=${pids[i-1]}
    if [ "$cgroups" = on ]; then
      name="broker-scaleout-$$-n$n-node$i"
      for root in "$cpu_root" "$acct_root"; do
        [ -d "$root/$name" ] && continue
        mkdir "$root/$name"; made_cgroups+=("$root/$name")
        echo "created cgroup $root/$name"
      done
      echo 100000 >"$cpu_root/$name/cpu.cfs_period_us"
      awk -v c="$cpu_per_node" 'BEGIN { printf "%d\n", c * 100000 }' >"$cpu_root/$name/cpu.cfs_quota_us"
      # cgroup.procs moves every thread of the process; threads it starts later stay in the group.
      echo "$pid" >"$cpu_root/$name/cgroup.procs"
      [ "$acct_root" = "$cpu_root" ] || echo "$pid" >"$acct_root/$name/cgroup.procs"
      acct_dirs+=("$acct_root/$name")
    fi
    echo "   node$i pid $pid  mqtt 127.0.0.1:${mqtt[i-1]}${acct_dirs:+  cgroup $name}"
  done
  targets=$(printf '127.0.0.1:%s,' "${mqtt[@]}"); targets=${targets%,}
  [ "$idle_first" = 0 ] || { echo "   idle for ${idle_first} s first"; run_child sleep "$idle_first"; }
  for mode in $modes; do
    case $mode in
      q0) qos=0 extra=() ;;
      q1) qos=1 extra=() ;;
      q1p) qos=1 extra=(--persistent) ;;
    esac
    report="$out/n$n-$mode"
    settle
    # Every client as fast as the broker takes (constant), or RATE batches a second spread over the clients (inject).
    case $scenario in fan-out) load="constant:1:${duration}s" ;; *) load="constant:$pairs:${duration}s" ;; esac
    [[ $idle_first =~ ^[0-9]+$ ]] && [ "$idle_first" -le 600 ] || fail "IDLE_FIRST = '$idle_first': seconds, from 0 to 600"
[ -z "$rate" ] || load="inject:$rate:${duration}s"
    case $scenario in
      point-to-point) shape=(point-to-point --spread "$spread" --clients "$pairs" --load "$load") ;;
      fan-in) shape=(fan-in --clients "$pairs" --subscribers 1 --load "$load") ;;
      fan-out) shape=(fan-out --clients 1 --subscribers "$subscribers" --load "$load") ;;
    esac
    run_child dotnet "$runner_dll" "${shape[@]}" --targets "$targets" --qos "$qos" \
      "${extra[@]}" --batch 100 --window 100 --warmup "${warmup}s" --drain "${drain}s" \
      --broker-pid "$(IFS=,; echo "${pids[*]}")" ${acct_dirs[@]+--broker-cgroup "$(IFS=,; echo "${acct_dirs[*]}")"} \
      --no-live --report-dir "$report" >"$report.log" 2>&1 || true
    if python3 - "$report/report.json" "$n" "$mode" "$cpu_per_node" "$cgroups" >>"$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n, mode, cap, capped = int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5] == "on"
failed = [w for w in r["Warnings"] if w.startswith("the run")]
cpu = r.get("BrokerCpuSeconds")
per100k = cpu / r["MeasuredCount"] * 1e5 if cpu is not None and r["MeasuredCount"] > 0 else -1
share = r["BrokerCores"] / (n * cap) * 100 if capped and r.get("BrokerCores") is not None else -1
lost = sum(q["Lost"] for q in r["PerQoS"])
crossing = r["Facts"].get("pairs crossing targets", "0 of -").split(" (")[0]
print("\t".join(map(str, [n, mode, f'{r["Rate"]:.0f}', f"{per100k:.3f}", f"{share:.0f}", lost, crossing,
                          f'{r["RunnerCores"]:.2f}', r["Errors"], "failed: " + failed[0] if failed else "ok"])))
PY
    then
      tail -1 "$results" | awk -F'\t' -v load="$(cut -d' ' -f1 /proc/loadavg)" \
        '{ printf "   %-4s %8s msg/s  %s CPU-s/100k  %s %% of cap  lost %s  (%s; machine load average %s)\n", $2, $3, $4, $5, $6, $10, load }'
      [ "$(tail -1 "$results" | cut -f10)" = ok ] || failed=1
    else echo "   $mode: no report (see $report.log)"; failed=1; fi
  done
  LOCAL_CLUSTER_RUN_DIR="$run_dir" run_child "$cluster" down >>"$out/cluster.log" 2>&1 || echo "local-cluster.sh down failed (see $out/cluster.log)" >&2
  run_dir=""
  remove_cgroups
done

print_table "$results" "$cgroups" "$cpu_per_node" | tee "$out/table.md"
exit $failed
