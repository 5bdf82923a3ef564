"""HTTPS test server for CurlKit (stdlib only).

Requires a client certificate signed by --ca. Prints "PORT <n>" on stdout once listening.
Paths:
  /echo            -> JSON: method, size and sha256 of the request body (Content-Length or
                      chunked), client_port, connection_requests (requests on this TCP
                      connection), peer_cn, tls_version
  /sleep?s=N       -> waits N seconds, then 200
  /status?code=N   -> returns status N
  /headers         -> 200 with repeated headers (Set-Cookie x2, X-Multi x2)
  /bytes?n=N       -> N bytes of a repeating pattern; X-SHA256 header
"""
import argparse
import hashlib
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        self.connection_requests = 0
        self.handshake_ok = False
        try:
            self.request.do_handshake()
            self.handshake_ok = True
        except (ssl.SSLError, OSError) as error:
            sys.stderr.write(f"handshake failed: {error}\n")
            drain(self.request)
        super().setup()

    def handle(self):
        if self.handshake_ok:
            super().handle()

    def read_body(self):
        digest = hashlib.sha256()
        size = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline().strip()
                length = int(line.split(b";")[0], 16)
                if length == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                remaining = length
                while remaining:
                    piece = self.rfile.read(min(remaining, 1 << 16))
                    digest.update(piece)
                    remaining -= len(piece)
                size += length
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                piece = self.rfile.read(min(remaining, 1 << 16))
                if not piece:
                    break
                digest.update(piece)
                size += len(piece)
                remaining -= len(piece)
        return size, digest.hexdigest()

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_any(self):
        self.connection_requests += 1
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        size, sha = self.read_body()
        if url.path == "/echo":
            cert = self.request.getpeercert() or {}
            cn = next((v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"), None)
            body = json.dumps({
                "method": self.command, "size": size, "sha256": sha,
                "client_port": self.client_address[1],
                "connection_requests": self.connection_requests,
                "peer_cn": cn, "tls_version": self.request.version(),
                "content_type": self.headers.get("Content-Type"),
                "transfer_encoding": self.headers.get("Transfer-Encoding"),
            }).encode()
            self.reply(200, body, [("Content-Type", "application/json")])
        elif url.path == "/sleep":
            time.sleep(float(query.get("s", "5")))
            self.reply(200, b"slept")
        elif url.path == "/status":
            code = int(query.get("code", "200"))
            self.reply(code, f"status {code}".encode(), [("Retry-After", "30")])
        elif url.path == "/headers":
            self.reply(200, b"ok", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Multi", "one"), ("X-Multi", "two")])
        elif url.path == "/bytes":
            n = int(query.get("n", "0"))
            data = (bytes(range(256)) * (n // 256 + 1))[:n]
            self.reply(200, data, [("X-SHA256", hashlib.sha256(data).hexdigest())])
        else:
            self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_any


def drain(sock):
    """After a failed handshake, read what the client still sends so closing does not turn
    into a TCP reset that could overtake our TLS alert."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    deadline = time.monotonic() + 2
    fd = sock.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--tls", choices=["any", "1.2", "1.3"], default="any")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.tls == "1.2":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls == "1.3":
        context.minimum_version = ssl.TLSVersion.TLSv1_3

    # The test runner may start us with signals blocked; also exit when our stdin closes, so
    # a crashed test run leaves no server behind.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
