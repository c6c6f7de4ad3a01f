#!/usr/bin/env python3
"""Real gRPC and HTTPS peers for bulb's tests (grpcio, grpcio-health-checking).

serve NAME [--cert C --key K [--client-ca CA]]
    A gRPC server on 127.0.0.1 (h2c, or TLS; with --client-ca it requires a
    client certificate). Prints "PORT n" once listening. Methods (raw bytes,
    no protobuf): /test.Echo/Unary, ServerStream, ClientStream, Bidi, Fail,
    Die (one message, then the process exits), Slow (answers after 0.3 s),
    Peers (the client addresses seen, one per connection). grpc.health.v1.Health is served; a line
    "health SERVICE STATUS" on stdin sets a status (SERVICE "-" is "").

https NAME --cert C --key K
    An HTTP/1.1 server over TLS answering every GET with NAME, with
    `X-Tls-Resumed: yes|no` (whether the client resumed a TLS session); on
    a path starting /close it closes the connection after the response.

call TARGET OPS_JSON [--ca CA --name SERVERNAME | --authority HOST]
    Run the operations in OPS_JSON ({"kind": unary|server|client|bidi|parallel,
    "method", "msgs", "n"}) over one channel and print a JSON list of
    results: {"code", "details", "responses", "trailers", "secs"}.
"""
import json
import os
import sys
import threading
import time


def serve(args):
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    name = args[0].encode()
    opts = dict(zip(args[1::2], args[2::2]))
    peers = set()
    lock = threading.Lock()

    def seen(ctx):
        with lock:
            peers.add(ctx.peer())

    def unary(req, ctx):
        seen(ctx)
        ctx.set_trailing_metadata((("x-served-by", name.decode()),))
        return name + b":" + req

    def server_stream(req, ctx):
        seen(ctx)
        for i in range(int(req or b"3")):
            yield name + b":" + str(i).encode()

    def client_stream(reqs, ctx):
        seen(ctx)
        got = [r for r in reqs]
        return name + b":" + b"+".join(got)

    def bidi(reqs, ctx):
        seen(ctx)
        for r in reqs:
            yield name + b":" + r

    def fail(req, ctx):
        seen(ctx)
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad thing: " + req.decode())

    def die(req, ctx):
        seen(ctx)
        yield name + b":first"
        time.sleep(0.3)
        os._exit(3)

    def slow(req, ctx):
        seen(ctx)
        time.sleep(0.3)
        return name

    def peer_list(req, ctx):
        with lock:
            return json.dumps(sorted(peers)).encode()

    h = grpc.unary_unary_rpc_method_handler
    handlers = {
        "Unary": h(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": h(fail),
        "Die": grpc.unary_stream_rpc_method_handler(die),
        "Peers": h(peer_list),
        "Slow": h(slow),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Echo", handlers),)
    )
    hs = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    for svc in ("", "test.Echo"):
        hs.set(svc, health_pb2.HealthCheckResponse.SERVING)
    if "--cert" in opts:
        read = lambda p: open(p, "rb").read()
        ca = read(opts["--client-ca"]) if "--client-ca" in opts else None
        creds = grpc.ssl_server_credentials(
            [(read(opts["--key"]), read(opts["--cert"]))],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("PORT", port, flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "health":
            svc = "" if parts[1] == "-" else parts[1]
            status = health_pb2.HealthCheckResponse.ServingStatus.Value(parts[2])
            hs.set(svc, status)
            print("OK", flush=True)
    server.stop(0)


def https(args):
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    name = args[0].encode()
    opts = dict(zip(args[1::2], args[2::2]))

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(name)))
            resumed = "yes" if self.connection.session_reused else "no"
            self.send_header("X-Tls-Resumed", resumed)
            if self.path.startswith("/close"):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(name)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts["--cert"], opts["--key"])
    ctx.set_alpn_protocols(["http/1.1"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT", srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()


def call(args):
    import grpc

    target, ops = args[0], json.loads(args[1])
    opts = dict(zip(args[2::2], args[3::2]))
    if "--ca" in opts:
        creds = grpc.ssl_channel_credentials(open(opts["--ca"], "rb").read())
        channel = grpc.secure_channel(
            target, creds, (("grpc.ssl_target_name_override", opts["--name"]),)
        )
    elif "--authority" in opts:
        channel = grpc.insecure_channel(
            target, (("grpc.default_authority", opts["--authority"]),)
        )
    else:
        channel = grpc.insecure_channel(target)
    out = []
    for op in ops:
        kind, msgs = op["kind"], [m.encode() for m in op.get("msgs", [])]
        path = "/test.Echo/" + op["method"]
        start = time.time()
        res = {"responses": [], "trailers": {}}
        try:
            if kind == "parallel":
                fn = channel.unary_unary(path)
                fs = [fn.future(b"", timeout=10) for _ in range(op["n"])]
                res["responses"] = [f.result().decode() for f in fs]
                c = fs[-1]
            elif kind == "unary":
                fn = channel.unary_unary(path)
                resp, c = fn.with_call(msgs[0], timeout=op.get("timeout", 10))
                res["responses"] = [resp.decode()]
            elif kind == "server":
                c = channel.unary_stream(path)(msgs[0], timeout=op.get("timeout", 10))
                for r in c:
                    res["responses"].append(r.decode())
            elif kind == "client":
                fn = channel.stream_unary(path)
                resp, c = fn.with_call(iter(msgs), timeout=op.get("timeout", 10))
                res["responses"] = [resp.decode()]
            else:
                c = channel.stream_stream(path)(iter(msgs), timeout=op.get("timeout", 10))
                for r in c:
                    res["responses"].append(r.decode())
            res["code"] = c.code().name
            res["details"] = c.details()
            res["trailers"] = dict(c.trailing_metadata() or ())
        except grpc.RpcError as e:
            res["code"] = e.code().name
            res["details"] = e.details()
            res["trailers"] = dict(e.trailing_metadata() or ())
        res["secs"] = time.time() - start
        out.append(res)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    {"serve": serve, "https": https, "call": call}[sys.argv[1]](sys.argv[2:])
