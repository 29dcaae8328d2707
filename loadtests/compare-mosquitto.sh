#!/usr/bin/env bash
# Runs the same load-test scenarios against this broker (one Broker.Node, SQLite, default limits) and Mosquitto
# (loadtests/mosquitto-compare.conf: the same queue limits), alternating A B A B for ROUNDS rounds, each broker
# started fresh on a free port every round; prints per-round figures, then medians and the ratio broker/Mosquitto.
#   loadtests/compare-mosquitto.sh [rounds]          (default 3)
# Environment: DURATION (measured seconds per scenario, default 8), CONNECTIONS (idle connections, default 19000),
# CONNECT_TIME (seconds allowed to open them, default 60), ONLY (space-separated scenario names to run, e.g.
# "fanin-q0 p2p-q1"; default all), CLUSTER=1 (this broker as the local three-node cluster of cluster-config/ on one
# PostgreSQL, started fresh each round under /tmp/broker-fixed-ports.lock; the runner spreads its clients over the
# three nodes and sums CPU and RSS over the three node processes). Reports land in loadtests/reports/compare-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
duration=${DURATION:-8}
connections=${CONNECTIONS:-19000}
connect_time=${CONNECT_TIME:-60}
out="loadtests/reports/compare-$(date -u +%Y%m%d-%H%M%S)${CLUSTER:+-cluster}"
cluster=${CLUSTER:-}
mkdir -p "$out"

# 19,000 sockets on each side: raise the soft open-file limit to the hard one (20,000 here); brokers inherit it.
ulimit -n "$(ulimit -Hn)"
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  [ "$(id -u)" = 0 ] || { echo "mosquitto is missing: apt-get install mosquitto" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  command -v systemctl >/dev/null && systemctl stop mosquitto >/dev/null 2>&1 || true
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)

echo "building (Release) ..."
dotnet build -c Release -v q --nologo Broker.Node >"$out/build.log" 2>&1 && \
  dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid=""
cluster_up=""
start_broker() { # name -> sets pid (comma-separated for a cluster), targets
  port=$(free_port)
  targets="127.0.0.1:$port"
  local dir="$out/$1-run"
  # Remove the last round's log first: the background start truncates it only once it runs, after the wait began.
  rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
  if [ "$1" = broker ] && [ -n "$cluster" ]; then
    # The fixed ports of cluster-config (1883-1885, 4053-4055, 55432) are shared by every user of this machine.
    exec 9>/tmp/broker-fixed-ports.lock
    flock 9
    cluster-config/local-cluster.sh up >"$dir.log" 2>&1 || { cat "$dir.log" >&2; flock -u 9; return 1; }
    cluster_up=1
    pid=$(grep -o 'node[0-9]=[0-9]*' cluster-config/.run/state | cut -d= -f2 | paste -sd, -)
    targets="127.0.0.1:1883,127.0.0.1:1884,127.0.0.1:1885"
    return 0
  fi
  if [ "$1" = broker ]; then
    dotnet Broker.Node/bin/Release/net10.0/Broker.Node.dll --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" \
      --Cluster:Hostname=127.0.0.1 --Cluster:Port="$(free_port)" --Node:DataDir="$dir/data" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do grep -q "Broker ready" "$dir.log" 2>/dev/null && return 0; sleep 0.2; done
  else
    sed "s/@PORT@/$port/" loadtests/mosquitto-compare.conf >"$dir/mosquitto.conf"
    "$mosquitto_bin" -c "$dir/mosquitto.conf" >"$dir.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && return 0; sleep 0.1; done
  fi
  echo "$1 did not start (see $dir.log)" >&2; return 1
}
stop_broker() {
  if [ -n "$cluster_up" ]; then
    cluster-config/local-cluster.sh down >/dev/null 2>&1 || true
    cluster_up=""; flock -u 9
  elif [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'stop_broker' EXIT

# name | runner arguments
scenarios=(
  "fanin-q0|fan-in --clients 50 --qos 0 --load constant:50:${duration}s --batch 100 --warmup 3s --drain 5s"
  "fanout-q0|fan-out --clients 1 --subscribers 100 --qos 0 --load constant:1:${duration}s --batch 100 --warmup 3s --drain 5s"
  "p2p-q0|point-to-point --clients 50 --qos 0 --load constant:50:${duration}s --batch 100 --warmup 3s --drain 5s"
  "p2p-q1|point-to-point --clients 50 --qos 1 --load constant:50:${duration}s --batch 100 --window 100 --warmup 3s --drain 5s"
  "latency-1k|point-to-point --clients 1 --qos 0 --load inject:1000:${duration}s --warmup 3s --drain 5s"
  "idle-conns|connect-storm --clients 50 --load inject:1000:${connect_time}s --max-connections $connections --hold 5s --warmup 0s --drain 1s"
)

for round in $(seq "$rounds"); do
  for b in broker mosquitto; do
    start_broker "$b"
    echo "== round $round: $b (pid $pid, $targets)"
    for s in "${scenarios[@]}"; do
      name=${s%%|*}; args=${s#*|}
      if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
      # shellcheck disable=SC2086
      timeout 600 "${runner[@]}" $args --targets "$targets" --broker-pid "$pid" --no-live \
        --report-dir "$out/$b-$name-r$round" >"$out/$b-$name-r$round.log" 2>&1 || true
      python3 - "$out/$b-$name-r$round/report.json" "$name" <<'PY' || echo "   $name: no report (see log)"
import json, sys
r = json.load(open(sys.argv[1]))
lost = sum(q["Lost"] for q in r["PerQoS"])
facts = r.get("Facts", {})
extra = f'  rss/conn {facts.get("broker RSS per idle connection","?")} open {facts.get("connections open after hold","?")}' if sys.argv[2] == "idle-conns" else ""
print(f'   {sys.argv[2]:<11} {r["Rate"]:>10,.0f} {r["RateUnit"]:<10} p50 {r["LatencyP50Ms"]:8.3f} ms  p99 {r["LatencyP99Ms"]:8.3f} ms  '
      f'broker {r["BrokerCpuMicrosPerUnit"] or 0:7.2f} us/unit  runner {r["RunnerCores"]:.2f} cores  lost {lost}{extra}')
PY
    done
    stop_broker
  done
done

python3 - "$out" "$rounds" <<'PY' | tee "$out/summary.md"
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(b, name):
    rs = []
    for r in range(1, rounds + 1):
        p = f"{out}/{b}-{name}-r{r}/report.json"
        if os.path.exists(p):
            j = json.load(open(p))
            # A run that failed (broker not reachable, time limit) is no sample.
            if not any(w.startswith("the run") for w in j["Warnings"]):
                rs.append(j)
    return rs
def med(rs, f):
    vals = [f(r) for r in rs if f(r) is not None]
    return statistics.median(vals) if vals else None
rows = [
    ("fan-in QoS 0, 50 publishers -> 1 wildcard subscriber", "fanin-q0", "msg/s", lambda r: r["Rate"]),
    ("fan-out QoS 0, 1 publisher -> 100 subscribers", "fanout-q0", "deliveries/s", lambda r: r["Rate"]),
    ("point-to-point QoS 0, 50 pairs", "p2p-q0", "msg/s", lambda r: r["Rate"]),
    ("point-to-point QoS 1, 50 pairs", "p2p-q1", "msg/s", lambda r: r["Rate"]),
    ("latency at 1,000 msg/s, p50", "latency-1k", "ms", lambda r: r["LatencyP50Ms"]),
    ("latency at 1,000 msg/s, p99", "latency-1k", "ms", lambda r: r["LatencyP99Ms"]),
    ("idle connections opened", "idle-conns", "connections", lambda r: float(r["Facts"].get("connections open after hold", "0").replace(",", ""))),
    ("broker memory per idle connection", "idle-conns", "KB", lambda r: float(r["Facts"]["rss_per_connection_bytes"]) / 1024 if "rss_per_connection_bytes" in r["Facts"] else None),
    ("connects/s", "idle-conns", "connects/s", lambda r: r["Rate"]),
    ("broker CPU per delivery, fan-in QoS 0", "fanin-q0", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("broker CPU per delivery, fan-out QoS 0", "fanout-q0", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("broker CPU per delivery, point-to-point QoS 0", "p2p-q0", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("broker CPU per delivery, point-to-point QoS 1", "p2p-q1", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("lost deliveries, point-to-point QoS 1 (queue limit drops)", "p2p-q1", "messages", lambda r: sum(q["Lost"] for q in r["PerQoS"])),
]
print(f"Medians of {rounds} rounds (A B A B...), {out}; samples per cell in brackets when fewer\n")
if os.environ.get("CLUSTER"):
    print("This broker: the local three-node cluster (cluster-config/, one PostgreSQL), clients spread over its nodes; CPU and RSS summed over the three nodes.\n")
print("| measure | unit | this broker | Mosquitto | broker / Mosquitto |")
print("|---|---|---|---|---|")
for label, name, unit, f in rows:
    ra, rb = load("broker", name), load("mosquitto", name)
    a, b = med(ra, f), med(rb, f)
    fmt = (lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3f}" if v < 1 else f"{v:.2f}"))
    n = lambda rs: "" if len(rs) == rounds else f" [{len(rs)}]"
    ratio = f"{a / b:.2f}" if a is not None and b not in (None, 0) else "-"
    print(f"| {label} | {unit} | {fmt(a)}{n(ra)} | {fmt(b)}{n(rb)} | {ratio} |")
PY
