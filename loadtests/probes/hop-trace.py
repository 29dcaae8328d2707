#!/usr/bin/env python3
"""Reads the file a broker built with hop-trace.patch writes at exit ($BROKER_HOP_TRACE: lines "hop sent_ticks
elapsed_us", the time since the runner stamped the payload at each hop of a publish) and prints, per hop, the
percentiles of that time and of the time since the latest earlier hop that marked the same message. The first fraction of messages
(default 0.3, the warm-up) is left out.
  git apply loadtests/probes/hop-trace.patch && dotnet build -c Release Broker.Node -o /tmp/hop-trace-build && git checkout . && git clean -fd Broker.Actors/Diagnostics
  BROKER_HOP_TRACE=/tmp/hops.txt dotnet /tmp/hop-trace-build/Broker.Node.dll ...   # then the runner, then stop the broker
  loadtests/probes/hop-trace.py /tmp/hops.txt
"""
import collections
import sys

path = sys.argv[1]
skip = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
by = collections.defaultdict(dict)
for line in open(path):
    hop, sent, us = line.split()
    by[int(hop)][int(sent)] = int(us)
sent = sorted(by[0].keys())
cut = sent[int(len(sent) * skip)] if sent else 0
names = {0: 'decoded (event loop)', 1: 'publisher conn actor', 2: 'route sent (flush)', 3: 'topic entity',
         4: 'session host', 5: 'live session', 6: 'subscriber conn actor', 7: 'write (on the loop)',
         8: 'encoded', 9: 'flushed to socket'}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float('nan')


print(f'{"hop (us since the runner sent)":30} {"n":>7} {"p50":>7} {"p90":>7} {"p99":>7} {"p99.9":>7} | since the hop before: {"p50":>6} {"p99":>6} {"p99.9":>6}')
last = {}  # per message, its time at the latest hop that marked it
for hop in sorted(by):
    d = {s: u for s, u in by[hop].items() if s >= cut}
    if hop == 10:  # a marker, not a hop: the flushes written in place by an actor on its channel's loop
        print(f'(flushes written in place, on the loop: {len(d)})')
        continue
    v = list(d.values())
    line = f'{names.get(hop, hop):30} {len(v):7} {pct(v, .5):7} {pct(v, .9):7} {pct(v, .99):7} {pct(v, .999):7}'
    if last:
        dl = [d[s] - last[s] for s in d if s in last]
        line += f' | {"":21}{pct(dl, .5):6} {pct(dl, .99):6} {pct(dl, .999):6}'
    print(line)
    last.update(d)
