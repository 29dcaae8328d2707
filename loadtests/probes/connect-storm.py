#!/usr/bin/env python3
# Connect storm: N clients (CONNECT, CONNACK, DISCONNECT) over P parallel sockets to 127.0.0.1.
#   connect-storm.py <port> <clients> <parallel> clean|persistent
import socket, time, threading, sys
port=int(sys.argv[1]); n=int(sys.argv[2]); par=int(sys.argv[3]); clean=sys.argv[4]=="clean"
def connect_pkt(cid):
    cid=cid.encode(); flags=0x02 if clean else 0x00
    body=bytes([0,4])+b"MQTT"+bytes([4,flags,0,60])+len(cid).to_bytes(2,'big')+cid
    return bytes([0x10,len(body)])+body
ok=[0]; lock=threading.Lock()
def worker(k):
    for i in range(k, n, par):
        s=socket.create_connection(("127.0.0.1",port)); s.sendall(connect_pkt(f"storm-{i}"))
        r=s.recv(4)
        if len(r)==4 and r[3]==0:
            with lock: ok[0]+=1
        s.sendall(bytes([0xe0,0])); s.close()
t=time.time(); ts=[threading.Thread(target=worker,args=(k,)) for k in range(par)]
[x.start() for x in ts]; [x.join() for x in ts]
d=time.time()-t; print(f"{'clean' if clean else 'persistent'}: {ok[0]}/{n} CONNACK ok in {d:.2f}s = {n/d:.0f} connects/s (connect+CONNACK+DISCONNECT, {par} in parallel)")
