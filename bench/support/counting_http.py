#!/usr/bin/env python3
"""A static HTTP server for bench/transport.sh and the static-delta test: serves DIR on
127.0.0.1:PORT and appends one line per request to LOG: "PATH STATUS BYTES", BYTES being what
went on the wire for the response (status line, headers and body).

  counting_http.py DIR PORT LOG
"""
import http.server, os, sys

root, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)

    def setup(self):
        super().setup()
        raw = self.wfile

        class Counter:
            def __init__(self):
                self.n = 0

            def write(self, b):
                self.n += len(b)
                return raw.write(b)

            def flush(self):
                return raw.flush()

            def __getattr__(self, name):
                return getattr(raw, name)

        self.wfile = Counter()

    def handle_one_request(self):
        self.wfile.n = 0
        self.command = self.path = None
        super().handle_one_request()
        if getattr(self, "path", None) and getattr(self, "command", None):
            with open(log, "a") as f:
                f.write(f"{self.path} {getattr(self, '_status', '-')} {self.wfile.n}\n")

    def send_response(self, code, message=None):
        self._status = code
        super().send_response(code, message)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
