#!/usr/bin/env python3
"""A protocol-exact FleetLock server for tests (the protocol Zincati speaks to airlock).

  POST /v1/pre-reboot   take a slot      header fleet-lock-protocol: true
  POST /v1/steady-state release a slot   body {"client_params": {"id": ID, "group": GROUP}}

200 means success; a failure carries {"kind": ..., "value": ...}. Locks are owned and recursive
(a holder asking again is granted; releasing a slot one does not hold succeeds). Each group is a
semaphore of --slots. Requests that break the protocol (method, path, header, body shape, group
syntax ^[a-zA-Z0-9.-]+$) are refused with 4xx and counted as violations.

Not part of the protocol, for the tests: GET /debug/state returns holders, the maximum number of
concurrent holders (overall and per group), grants, releases, refusals and violations, and every
request in order.

  fleetlock-server.py --port N [--slots 2] [--cert C --key K] [--state-file F]
"""
import argparse, json, re, ssl, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GROUP = re.compile(r"^[a-zA-Z0-9.-]+$")


class State:
    def __init__(self, slots):
        self.lock = threading.Lock()
        self.slots = slots
        self.holders = {}  # group -> set of ids
        self.max_total = 0
        self.max_group = {}
        self.counts = {"grants": 0, "releases": 0, "refusals": 0, "violations": 0}
        self.log = []

    def snapshot(self):
        return {
            "slots": self.slots,
            "holders": {g: sorted(ids) for g, ids in self.holders.items() if ids},
            "maxConcurrent": self.max_total,
            "maxConcurrentByGroup": self.max_group,
            **self.counts,
            "requests": self.log,
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fleetlock-test"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, status, kind, value, violation=True):
        st = self.server.state
        with st.lock:
            st.counts["violations" if violation else "refusals"] += 1
            st.log.append({"at": time.time(), "path": self.path, "status": status, "kind": kind})
        self.reply(status, {"kind": kind, "value": value})

    def do_GET(self):
        if self.path == "/debug/state":
            with self.server.state.lock:
                return self.reply(200, self.server.state.snapshot())
        self.fail(405 if self.path.startswith("/v1/") else 404, "bad_request", "only POST")

    def do_PUT(self):
        self.fail(405, "bad_request", "only POST")

    do_DELETE = do_PUT

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        op = {"/v1/pre-reboot": "pre-reboot", "/v1/steady-state": "steady-state"}.get(self.path)
        if op is None:
            return self.fail(404, "bad_request", "unknown path " + self.path)
        if self.headers.get("fleet-lock-protocol") != "true":
            return self.fail(400, "missing_header", "fleet-lock-protocol: true is required")
        try:
            body = json.loads(raw)
            params = body["client_params"]
            ident, group = params["id"], params["group"]
            assert set(body) == {"client_params"} and set(params) == {"id", "group"}
            assert isinstance(ident, str) and ident and isinstance(group, str)
        except Exception:
            return self.fail(400, "bad_request", "body must be {\"client_params\": {\"id\": ..., \"group\": ...}}")
        if not GROUP.match(group):
            return self.fail(400, "bad_request", "group must match ^[a-zA-Z0-9.-]+$")
        st = self.server.state
        with st.lock:
            holders = st.holders.setdefault(group, set())
            entry = {"at": time.time(), "op": op, "id": ident, "group": group}
            if op == "pre-reboot":
                if ident in holders or len(holders) < st.slots:
                    holders.add(ident)
                    st.counts["grants"] += 1
                    total = sum(len(h) for h in st.holders.values())
                    st.max_total = max(st.max_total, total)
                    st.max_group[group] = max(st.max_group.get(group, 0), len(holders))
                    entry["status"] = 200
                    st.log.append(entry)
                    return self.reply(200)
                st.counts["refusals"] += 1
                entry["status"] = 409
                st.log.append(entry)
                return self.reply(409, {"kind": "failed_lock", "value": "semaphore at capacity (%d of %d)" % (len(holders), st.slots)})
            holders.discard(ident)
            st.counts["releases"] += 1
            entry["status"] = 200
            st.log.append(entry)
            return self.reply(200)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--slots", type=int, default=1)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.state = State(args.slots)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
