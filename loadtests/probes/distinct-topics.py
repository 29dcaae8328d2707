#!/usr/bin/env python3
# Telemetry shape: one client publishes QoS 1 to N distinct topics nobody subscribed to (window 100) on 127.0.0.1.
#   distinct-topics.py <port> <topics> <run-name>
import socket, time, sys
port=int(sys.argv[1]); n=int(sys.argv[2]); prefix=sys.argv[3]
def enc_len(l):
    out=b''
    while True:
        d=l%128; l//=128
        if l>0: d|=0x80
        out+=bytes([d])
        if l==0: return out
s=socket.create_connection(("127.0.0.1",port)); cid=b"topics-"+prefix.encode()
body=bytes([0,4])+b"MQTT"+bytes([4,2,0,60])+len(cid).to_bytes(2,'big')+cid
s.sendall(bytes([0x10,len(body)])+body); assert s.recv(4)[3]==0
buf=b''; acked=0; sent=0; window=100; t=time.time()
def pub(i):
    topic=f"tele/{prefix}/dev{i}/temp".encode(); pid=(i%65000)+1
    vh=len(topic).to_bytes(2,'big')+topic+pid.to_bytes(2,'big')+b"21.5"
    return bytes([0x32])+enc_len(len(vh))+vh
while acked<n:
    batch=b''
    while sent<n and sent-acked<window:
        batch+=pub(sent); sent+=1
    if batch: s.sendall(batch)
    buf+=s.recv(65536)
    while len(buf)>=4 and buf[0]==0x40:
        buf=buf[4:]; acked+=1
d=time.time()-t
print(f"{n} QoS 1 publishes to {n} distinct topics (no subscribers): {n/d:.0f} publishes/s")
s.sendall(bytes([0xe0,0])); s.close()
