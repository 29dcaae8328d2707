#!/usr/bin/env python3
"""What a flood of large packets costs a broker in memory (README "Large payloads").

Opens N MQTT 3.1.1 connections to 127.0.0.1:PORT; each declares a PUBLISH of the protocol's maximum Remaining Length
(268,435,455 bytes) and sends only BODY bytes of it, then holds. Prints the broker's RSS (from /proc/PID/status)
before, while the connections hold their partial packets, and after they closed. Loopback only, bounded by N.

  python3 loadtests/large-packet-flood.py PORT N BODY_BYTES BROKER_PID
  e.g. python3 loadtests/large-packet-flood.py 1883 20 16777216 $(pgrep -f Broker.Node.dll)
"""
import os
import socket
import sys
import time

port, n, body, pid = (int(a) for a in sys.argv[1:5])


def rss_mb():
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024


def varint(x):
    out = bytearray()
    while True:
        b, x = x % 128, x // 128
        out.append(b | (128 if x else 0))
        if not x:
            return bytes(out)


print("rss before", rss_mb(), "MB")
sockets, chunk = [], os.urandom(1 << 16)
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    cid = f"flood{i}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    s.sendall(b"\x10" + varint(len(variable)) + variable)
    s.recv(4)  # CONNACK
    s.sendall(b"\x30" + varint(268435455) + b"\x00\x05flood")
    sent = 0
    while sent < body:
        s.sendall(chunk)
        sent += len(chunk)
    sockets.append(s)
time.sleep(3)
print(f"rss with {n} connections each holding {body >> 20} MiB of a declared 256 MiB PUBLISH:", rss_mb(), "MB")
for s in sockets:
    s.close()
time.sleep(3)
print("rss after close", rss_mb(), "MB")
