#!/usr/bin/env python3
"""A TLS reverse proxy in front of the test registry that dies in the middle of one blob: it
forwards every request to UPSTREAM, and for a GET of the blob CUT (a sha256 hex) sends the
registry's headers and half of the body, then closes the connection, as a registry or a network
that fails mid-transfer would. Uses the registry's own certificate (issued for 127.0.0.1).

    cutting-proxy.py PORT UPSTREAM_PORT DIR CUT

DIR is the registry's directory (server.crt, server.key, ca.crt). Runs until killed.
"""
import http.client, http.server, socketserver, ssl, sys

port, upstream, directory, cut = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
client_context = ssl.create_default_context(cafile=f"{directory}/ca.crt")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        connection = http.client.HTTPSConnection("127.0.0.1", upstream, context=client_context, timeout=60)
        # Header by header: a client sends several Accept headers, which a dict would merge.
        connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", f"127.0.0.1:{upstream}")
        for key, value in self.headers.items():
            if key.lower() != "host":
                connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection"):
                self.send_header(key, value.replace(f"127.0.0.1:{upstream}", f"127.0.0.1:{port}"))
        if "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "GET" and f"/blobs/sha256:{cut}" in self.path:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward

    def log_message(self, *args):
        sys.stderr.write("proxy: " + (args[0] % args[1:]) + "\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", port), Proxy)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(f"{directory}/server.crt", f"{directory}/server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
