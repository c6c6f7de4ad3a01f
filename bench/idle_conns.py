#!/usr/bin/env python3
"""Open N keep-alive client connections to HOST:PORT, send one request on each,
read its response, then hold them all idle until stdin closes.
Prints 'ready N' once every connection has had its answer."""
import socket, sys

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    socks.append(s)
print("ready", len(socks), flush=True)
sys.stdin.read()
