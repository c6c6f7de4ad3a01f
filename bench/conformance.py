#!/usr/bin/env python3
"""HTTP/1 conformance side by side: the same raw requests sent to nginx, HAProxy
and bulb, each in front of one backend that records the exact bytes it receives.

Usage: python3 bench/conformance.py [BULB_BINARY]   (default target/release/bulb)
Needs nginx and haproxy on PATH (bench/run.sh installs them). Loopback only.
Prints, per case and system, the first status answered (or "close") and what
reached the backend: "-" nothing, "fwd" something (the bytes are listed under
the table).
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BACKEND, PORTS = 9201, {"nginx": 8091, "haproxy": 8092, "bulb": 8093}

CASES = [
    ("CL list 5, 5", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"),
    ("two equal CL", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    ("CL 5, 6", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!"),
    ("CL + TE", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("TE chunked, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    ("two TE headers", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("chunk size empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"),
    ("chunk ext bare LF", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n"),
    ("chunk size 2^64", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n"),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("NUL in target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("no leading slash", b"GET a HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("bad %-escape", b"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("raw UTF-8 target", "GET /é HTTP/1.1\r\nHost: a\r\n\r\n".encode()),
    ("no Host (1.1)", b"GET / HTTP/1.1\r\n\r\n"),
    ("empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("Host a/b", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    ("absolute form", b"GET http://b.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n"),
    ("bare LF head", b"GET / HTTP/1.1\nHost: a\n\n"),
    ("Expect: 200-ok", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\nhello"),
    ("pipelined x2", b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
]

received = []
lock = threading.Lock()


def backend():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", BACKEND))
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def serve(c):
    c.settimeout(2)
    buf = b""
    try:
        while True:
            d = c.recv(65536)
            if not d:
                return
            with lock:
                received.append(d)
            buf += d
            # Answer every complete head (bodies are small and recorded anyway).
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        return


def send(port, raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(raw)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    statuses = [p.split(b" ")[1].decode() for p in out.split(b"HTTP/1.")[1:] if len(p.split(b" ")) > 1]
    return ",".join(statuses) or "close"


def start(bulb):
    d = tempfile.mkdtemp(prefix="bulb-conf-")
    up = f"127.0.0.1:{BACKEND}"
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(f"""daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.err;
events {{}}
http {{ access_log off; upstream b {{ server {up}; keepalive 8; }}
  server {{ listen 127.0.0.1:{PORTS['nginx']}; location / {{ proxy_pass http://b; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }} }}
""")
    with open(f"{d}/haproxy.cfg", "w") as f:
        f.write(f"""global
  maxconn 1000
defaults
  mode http
  timeout connect 2s
  timeout client 3s
  timeout server 3s
frontend fe
  bind 127.0.0.1:{PORTS['haproxy']}
  default_backend be
backend be
  server s1 {up}
""")
    with open(f"{d}/bulb.yaml", "w") as f:
        f.write(f"""threads: 1
pid_file: {d}/bulb.pid
upgrade_sock: {d}/bulb.sock
listeners: [{{address: "127.0.0.1:{PORTS['bulb']}"}}]
access_log: off
upstreams: {{b: {{backends: [{{address: "{up}"}}]}}}}
""")
    procs = [
        subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf"]),
        subprocess.Popen(["haproxy", "-f", f"{d}/haproxy.cfg"]),
        subprocess.Popen([bulb, "-c", f"{d}/bulb.yaml"], env={**os.environ, "RUST_LOG": "error"}),
    ]
    for p in PORTS.values():
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    return procs


def main():
    bulb = sys.argv[1] if len(sys.argv) > 1 else "target/release/bulb"
    threading.Thread(target=backend, daemon=True).start()
    procs = start(bulb)
    notes = []
    try:
        print(f"{'case':22}" + "".join(f"{n:>16}" for n in PORTS))
        for name, raw in CASES:
            row = f"{name:22}"
            for system, port in PORTS.items():
                with lock:
                    received.clear()
                status = send(port, raw)
                time.sleep(0.2)
                with lock:
                    got = b"".join(received)
                mark = "fwd" if got else "-"
                row += f"{status + ' ' + mark:>16}"
                if got:
                    notes.append(f"  {name} via {system}: {got[:200]!r}")
            print(row)
        print("\nbytes that reached the backend:")
        print("\n".join(notes))
    finally:
        for p in procs:
            p.terminate()


if __name__ == "__main__":
    main()
