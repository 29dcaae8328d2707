#!/usr/bin/env bash
# Connection rate and memory per idle connection of this broker (one Broker.Node, SQLite, default settings) beside
# Mosquitto (loadtests/mosquitto-compare.conf), alternating A B A B for ROUNDS rounds, each broker started fresh on a
# free port for every measurement; prints per-round figures, then medians and the ratio broker/Mosquitto.
#   loadtests/compare-connections.sh [rounds]          (default 3)
# Environment: CONNECTIONS (clean connections held open, default 19000: the open-file limit here is 20,000),
# RESUMES (persistent sessions created, then resumed and measured, default 2000; 0 skips), INFLIGHT (connects in
# flight at once, default 100), ONLY ("clean", "clean-warm", "clean-sub", "resume", "resume-passivated", "storm", "latency",
# "latency50k"; default "clean resume resume-passivated storm"; "clean-warm" measures the clean pass on a broker that
# has already taken and dropped one such pass, the steady state after start-up; "clean-sub": each clean device also
# subscribes to its own command topic behind its CONNECT), BROKER_DLL (another
# build's Broker.Node.dll as this broker), BROKER_FLAGS (more flags for this broker, e.g.
# "--Sessions:PassivatedStateBytes=0"), BROKERS (default "broker mosquitto"; "broker" skips Mosquitto), STORM (reconnect-storm arguments, default "--max-connections 5000
# --backoff 2s"). The memory figures are read after a full GC of the broker (dotnet-gcdump, installed on first use;
# the dumps stay in the report folders). Reports land in loadtests/reports/connections-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
connections=${CONNECTIONS:-19000}
resumes=${RESUMES:-2000}
inflight=${INFLIGHT:-100}
only=${ONLY:-clean resume resume-passivated storm}
storm=${STORM:---max-connections 5000 --backoff 2s}
broker_dll=${BROKER_DLL:-Broker.Node/bin/Release/net10.0/Broker.Node.dll}
read -r -a broker_extra <<<"${BROKER_FLAGS:-}"
brokers=${BROKERS:-broker mosquitto}
out="loadtests/reports/connections-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out"

# 19,000 sockets on each side: the soft open-file limit up to the hard one (20,000 here); brokers inherit it.
ulimit -n "$(ulimit -Hn)"
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  [ "$(id -u)" = 0 ] || { echo "mosquitto is missing: apt-get install mosquitto" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  command -v systemctl >/dev/null && systemctl stop mosquitto >/dev/null 2>&1 || true
fi
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if ! command -v dotnet-gcdump >/dev/null && [ ! -x "$HOME/.dotnet/tools/dotnet-gcdump" ]; then
  dotnet tool install -g dotnet-gcdump >/dev/null 2>&1 || echo "dotnet-gcdump not installed: RSS is read without a full GC" >&2
fi

echo "building (Release) ..."
dotnet build -c Release -v q --nologo Broker.Node >"$out/build.log" 2>&1 && \
  dotnet build -c Release -v q --nologo loadtests/Broker.LoadTests >>"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
runner=(dotnet loadtests/Broker.LoadTests/bin/Release/net10.0/Broker.LoadTests.dll)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pid=""
start_broker() { # name dir [broker flags...] -> sets pid, port
  port=$(free_port)
  local dir="$2"
  local extra=("${@:3}")
  rm -rf "$dir" "$dir.log"; mkdir -p "$dir"
  if [ "$1" = broker ]; then
    dotnet "$broker_dll" --Mqtt:Address=127.0.0.1 --Mqtt:Port="$port" \
      --Cluster:Hostname=127.0.0.1 --Cluster:Port="$(free_port)" --Node:DataDir="$dir/data" "${extra[@]}" ${broker_extra[@]+"${broker_extra[@]}"} >"$dir.log" 2>&1 &
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
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
  pid=""
}
trap 'stop_broker' EXIT

# name | runner arguments. "resume": the sessions left a few seconds before and are still in the broker's memory
# (it passivates after 30 s by default); "resume-passivated": this broker passivates offline sessions after 1 s and
# the sessions stay away 5 s, so each resume recovers its session from storage (Mosquitto keeps every session in memory).
declare -A broker_flags=([resume-passivated]="--Sessions:PassivateAfterSeconds=1")
# A pass that each broker (this one and Mosquitto alike) takes first, unmeasured, on the same process.
declare -A warmup_args=([clean-warm]="connect-rate --max-connections $connections --clients $inflight --hold 1s --warmup 0s --timeout 600s")
scenarios=(
  "clean|connect-rate --max-connections $connections --clients $inflight --hold 3s --warmup 0s --timeout 600s"
  "clean-warm|connect-rate --max-connections $connections --clients $inflight --hold 3s --warmup 0s --timeout 600s"
  "clean-sub|connect-rate --subscribe --max-connections $connections --clients $inflight --hold 3s --warmup 0s --timeout 600s"
  "resume|connect-rate --persistent --max-connections $resumes --clients $inflight --hold 1s --warmup 0s --timeout 600s"
  "resume-passivated|connect-rate --persistent --away 5s --max-connections $resumes --clients $inflight --hold 1s --warmup 0s --timeout 600s"
  "storm|reconnect-storm $storm --warmup 0s --timeout 600s"
  "latency|point-to-point --clients 1 --qos 0 --load inject:1000:10s --warmup 3s --drain 5s"
  "latency50k|point-to-point --clients 50 --qos 0 --load inject:50000:8s --warmup 3s --drain 5s"
)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/load.txt"
for round in $(seq "$rounds"); do
  for s in "${scenarios[@]}"; do
    name=${s%%|*}; args=${s#*|}
    [[ " $only " == *" $name "* ]] || continue
    for b in $brokers; do
      # shellcheck disable=SC2086
      start_broker "$b" "$out/$b-$name-r$round-run" ${broker_flags[$name]:-}
      if [ -n "${warmup_args[$name]:-}" ]; then
        # shellcheck disable=SC2086
        timeout 900 "${runner[@]}" ${warmup_args[$name]} --targets "127.0.0.1:$port" --broker-pid "$pid" --no-live \
          --report-dir "$out/$b-$name-r$round-warmup" >"$out/$b-$name-r$round-warmup.log" 2>&1 || true
      fi
      # shellcheck disable=SC2086
      timeout 900 "${runner[@]}" $args --targets "127.0.0.1:$port" --broker-pid "$pid" --no-live \
        --report-dir "$out/$b-$name-r$round" >"$out/$b-$name-r$round.log" 2>&1 || true
      stop_broker
      python3 - "$out/$b-$name-r$round/report.json" "$b" "$name" <<'PY' || echo "   $b $name: no report (see log)"
import json, sys
r = json.load(open(sys.argv[1])); f = r.get("Facts", {})
print(f'   {sys.argv[2]:<9} {sys.argv[3]:<8} {r["Rate"]:>9,.0f} {r["RateUnit"]:<11} p50 {r["LatencyP50Ms"]:7.3f} ms  p99 {r["LatencyP99Ms"]:7.3f} ms  '
      f'broker {r["BrokerCpuMicrosPerUnit"] or 0:7.1f} us/unit  runner {r["RunnerCores"]:.2f} cores  '
      + "  ".join(f"{k}: {v}" for k, v in f.items() if not k.endswith("_bytes")))
PY
    done
  done
  echo "load average after round $round: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"
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
            if not any(w.startswith("the run") for w in j["Warnings"]):
                rs.append(j)
    return rs
def fact(key, scale=1.0):
    return lambda r: float(r["Facts"][key].split()[0].replace(",", "")) * scale if key in r["Facts"] else None
rows = [
    ("clean connections opened per second", "clean", "connects/s", lambda r: r["Rate"]),
    ("CONNECT to CONNACK p99, clean", "clean", "ms", lambda r: r["LatencyP99Ms"]),
    ("connections open after the pass", "clean", "connections", fact("connections open after hold")),
    ("RSS per idle connection (after a full GC)", "clean", "KB", lambda r: float(r["Facts"]["rss_per_connection_bytes"]) / 1024 if "rss_per_connection_bytes" in r["Facts"] else None),
    ("managed heap per idle connection", "clean", "KB", lambda r: float(r["Facts"]["heap_per_connection_bytes"]) / 1024 if "heap_per_connection_bytes" in r["Facts"] else None),
    ("broker CPU per clean connect", "clean", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("generator CPU during the clean pass", "clean", "cores", lambda r: r["RunnerCores"]),
    ("clean connections opened and subscribed (own command topic) per second", "clean-sub", "connects/s", lambda r: r["Rate"]),
    ("RSS per idle connection subscribed to one topic (after a full GC)", "clean-sub", "KB", lambda r: float(r["Facts"]["rss_per_connection_bytes"]) / 1024 if "rss_per_connection_bytes" in r["Facts"] else None),
    ("managed heap per idle connection subscribed to one topic", "clean-sub", "KB", lambda r: float(r["Facts"]["heap_per_connection_bytes"]) / 1024 if "heap_per_connection_bytes" in r["Facts"] else None),
    ("broker CPU per clean connect and subscribe", "clean-sub", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("clean connections opened per second, after one such pass", "clean-warm", "connects/s", lambda r: r["Rate"]),
    ("CONNECT to CONNACK p99, clean, after one such pass", "clean-warm", "ms", lambda r: r["LatencyP99Ms"]),
    ("broker CPU per clean connect, after one such pass", "clean-warm", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("generator CPU during the clean pass, after one such pass", "clean-warm", "cores", lambda r: r["RunnerCores"]),
    ("persistent sessions resumed per second", "resume", "connects/s", lambda r: r["Rate"]),
    ("broker CPU per resume", "resume", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("passivated sessions resumed per second (kept state or storage)", "resume-passivated", "connects/s", lambda r: r["Rate"]),
    ("broker CPU per resume of a passivated session", "resume-passivated", "µs", lambda r: r["BrokerCpuMicrosPerUnit"]),
    ("reconnect storm: all back (CONNACK)", "storm", "s", fact("all reconnected after")),
    ("reconnect storm: messages flow again (all echoes back)", "storm", "s", fact("messages flow again after")),
    ("reconnect storm: broker RSS peak", "storm", "MB", fact("broker RSS peak during the storm")),
    ("reconnect storm: refusals", "storm", "CONNACKs", fact("refused (CONNACK code not 0)")),
    ("latency at 1,000 msg/s, p50", "latency", "ms", lambda r: r["LatencyP50Ms"]),
    ("latency at 1,000 msg/s, p99", "latency", "ms", lambda r: r["LatencyP99Ms"]),
    ("latency at 50,000 msg/s (50 pairs), p50", "latency50k", "ms", lambda r: r["LatencyP50Ms"]),
    ("latency at 50,000 msg/s (50 pairs), p99", "latency50k", "ms", lambda r: r["LatencyP99Ms"]),
    ("rate reached in the 50,000 msg/s run", "latency50k", "msg/s", lambda r: r["Rate"]),
    ("generator CPU in the 50,000 msg/s run", "latency50k", "cores", lambda r: r["RunnerCores"]),
]
print(f"Medians of {rounds} rounds (broker and Mosquitto alternately, each started fresh), {out}; samples per cell in brackets when fewer\n")
print("| measure | unit | this broker | Mosquitto | broker / Mosquitto |")
print("|---|---|---|---|---|")
for label, name, unit, f in rows:
    ra, rb = load("broker", name), load("mosquitto", name)
    if not ra and not rb:
        continue
    va = [f(r) for r in ra if f(r) is not None]; vb = [f(r) for r in rb if f(r) is not None]
    a = statistics.median(va) if va else None; b = statistics.median(vb) if vb else None
    fmt = (lambda v: "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.3f}" if v < 1 else f"{v:.2f}"))
    n = lambda vs: "" if len(vs) == rounds else f" [{len(vs)}]"
    ratio = f"{a / b:.2f}" if a is not None and b not in (None, 0) else "-"
    print(f"| {label} | {unit} | {fmt(a)}{n(va)} | {fmt(b)}{n(vb)} | {ratio} |")
PY
cat "$out/load.txt"
