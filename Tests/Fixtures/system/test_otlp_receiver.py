#!/usr/bin/env python3
"""Tests for otlp-receiver.py. Run with a Python that has opentelemetry-proto (protobuf) installed:

    .build/pytools/bin/python Tests/Fixtures/system/test_otlp_receiver.py [-v]
"""
import gzip
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(os.path.dirname(HERE), "harness", "otlp-receiver.py")

# A hand-written OTLP/HTTP JSON request as the proto3 JSON mapping (with OTLP's deviations) has it:
# 64-bit integers as decimal strings, enums as numbers, hex traceId/spanId, lowerCamelCase keys.
VALID = {
    "resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "apt-layerd"}},
            {"key": "host.id", "value": {"stringValue": "0123456789abcdef0123456789abcdef"}},
            {"key": "fleet.wave", "value": {"intValue": "2"}},
        ]},
        "scopeLogs": [{
            "scope": {"name": "apt-layer", "version": "1.0"},
            "logRecords": [
                {
                    "timeUnixNano": "1767225600000000000",
                    "observedTimeUnixNano": "1767225601000000000",
                    "severityNumber": 9,
                    "severityText": "INFO",
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "spanId": "eee19b7ec3c1b174",
                    "attributes": [
                        {"key": "event", "value": {"stringValue": "status"}},
                        {"key": "seq", "value": {"intValue": "42"}},
                    ],
                    "body": {"kvlistValue": {"values": [
                        {"key": "state", "value": {"stringValue": "idle"}},
                        {"key": "attempt", "value": {"intValue": "3"}},
                        {"key": "big", "value": {"intValue": "9007199254740993"}},
                        {"key": "ratio", "value": {"doubleValue": 0.5}},
                        {"key": "ok", "value": {"boolValue": True}},
                        {"key": "nothing", "value": {}},
                        {"key": "raw", "value": {"bytesValue": "aGk="}},
                        {"key": "list", "value": {"arrayValue": {"values": [
                            {"stringValue": "a"}, {"intValue": 7}, {}, {"kvlistValue": {"values": [
                                {"key": "deep", "value": {"boolValue": False}}]}},
                        ]}}},
                    ]}},
                },
                {
                    "timeUnixNano": 1767225602000000000,
                    "severityNumber": 13,
                    "body": {"stringValue": "plain text"},
                },
            ],
        }],
    }],
}

EXPECTED_FIRST = {
    "resource": {"service.name": "apt-layerd", "host.id": "0123456789abcdef0123456789abcdef", "fleet.wave": 2},
    "scope": "apt-layer",
    "scopeVersion": "1.0",
    "timeUnixNano": 1767225600000000000,
    "observedTimeUnixNano": 1767225601000000000,
    "severityNumber": 9,
    "severityText": "INFO",
    "eventName": "",
    "attributes": {"event": "status", "seq": 42},
    "body": {"state": "idle", "attempt": 3, "big": 9007199254740993, "ratio": 0.5, "ok": True,
             "nothing": None, "raw": "aGk=", "list": ["a", 7, None, {"deep": False}]},
}


def one_record(**fields):
    rec = {"timeUnixNano": "1", "body": {"stringValue": "x"}}
    rec.update(fields)
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [rec]}]}]}


class Receiver:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="otlp-receiver-test.")
        self.out = os.path.join(self.dir, "out.jsonl")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, RECEIVER, "--port", "0", "--out", self.out, *args],
            stdout=subprocess.PIPE, stderr=self.stderr)
        try:
            words = self._ready()
            self.port, self.control = int(words["LISTENING"]), int(words["CONTROL"])
        except BaseException:
            self.stop()
            raise

    def _ready(self):
        """Read stdout (raw, unbuffered) until the LISTENING and CONTROL lines are there."""
        buf, deadline = b"", time.monotonic() + 15
        fd = self.proc.stdout.fileno()
        while buf.count(b"\n") < 2:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                raise AssertionError(f"receiver not ready: stdout {buf!r}, stderr {self.read_stderr()}")
            buf += chunk
        return dict(line.split() for line in buf.decode().splitlines()[:2])

    def read_stderr(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def records(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [json.loads(line) for line in f]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def request(port, method, path, body=b"", headers=None, context=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def post_logs(port, body, content_type="application/json", **kw):
    headers = {"Content-Type": content_type}
    headers.update(kw.pop("headers", {}))
    return request(port, "POST", "/v1/logs", body, headers, **kw)


def state(port):
    status, _, data = request(port, "GET", "/debug/state")
    assert status == 200, status
    return json.loads(data)


def set_mode(port, mode, retry_after=None):
    body = {"mode": mode}
    if retry_after is not None:
        body["retry_after"] = retry_after
    status, _, data = request(port, "POST", "/debug/mode", body, {"Content-Type": "application/json"})
    assert status == 200, (status, data)
    return json.loads(data)


class ReceiverTest(unittest.TestCase):
    def setUp(self):
        self.r = Receiver("--quiet")

    def tearDown(self):
        self.r.stop()

    def assertStatusBody(self, data, code=None):
        body = json.loads(data)
        self.assertIsInstance(body.get("message"), str)
        self.assertTrue(body["message"])
        if code is not None:
            self.assertEqual(body["code"], code)
        return body

    def test_valid_request_is_recorded(self):
        t0 = time.time()
        status, headers, data = post_logs(self.r.port, VALID)
        self.assertEqual(status, 200, data)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(data), {})  # full success: partialSuccess unset
        recs = self.r.records()
        self.assertEqual(len(recs), 2)
        first = dict(recs[0])
        received = first.pop("received")
        self.assertGreaterEqual(received, t0 - 1)
        self.assertLessEqual(received, time.time() + 1)
        self.assertEqual(first, EXPECTED_FIRST)
        self.assertEqual(recs[1]["body"], "plain text")
        self.assertEqual(recs[1]["timeUnixNano"], 1767225602000000000)
        self.assertEqual(recs[1]["severityNumber"], 13)
        self.assertEqual(recs[1]["attributes"], {})
        self.assertEqual(recs[1]["resource"], EXPECTED_FIRST["resource"])
        st = state(self.r.port)
        self.assertEqual((st["requests"], st["records"], st["protocol_errors"]), (1, 2, 0))
        self.assertEqual(st["bytes"], len(json.dumps(VALID).encode()))
        self.assertEqual(st["by_status"], {"200": 1})
        self.assertEqual(st["mode"], "up")

    def test_charset_parameter_and_empty_request(self):
        status, _, data = post_logs(self.r.port, {}, content_type="application/json; charset=utf-8")
        self.assertEqual((status, json.loads(data)), (200, {}))
        self.assertEqual(self.r.records(), [])

    def test_gzip(self):
        body = gzip.compress(json.dumps(VALID).encode())
        status, _, data = post_logs(self.r.port, body, headers={"Content-Encoding": "gzip"})
        self.assertEqual((status, json.loads(data)), (200, {}))
        self.assertEqual(len(self.r.records()), 2)
        st = state(self.r.port)
        self.assertEqual(st["bytes"], len(body))  # as received, before gunzip
        # Content-Encoding gzip on a body that is not gzip: bad data.
        status, _, data = post_logs(self.r.port, json.dumps(VALID).encode(), headers={"Content-Encoding": "gzip"})
        self.assertEqual(status, 400)
        self.assertStatusBody(data, 3)

    def test_unknown_field_is_400_and_a_protocol_error(self):
        status, headers, data = post_logs(self.r.port, one_record(bogus=1))
        self.assertEqual(status, 400)
        self.assertEqual(headers["Content-Type"], "application/json")
        body = self.assertStatusBody(data, 3)
        self.assertIn("bogus", body["message"])
        self.assertEqual(body["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest")
        st = state(self.r.port)
        self.assertEqual((st["protocol_errors"], st["records"], st["by_status"]), (1, 0, {"400": 1}))
        self.assertEqual(self.r.records(), [])

    def test_otlp_json_deviations_are_enforced(self):
        bad = [
            one_record(time_unix_nano="1"),                        # snake_case key
            one_record(severityNumber="SEVERITY_NUMBER_INFO"),     # enum by name
            one_record(severityNumber=True),
            one_record(traceId="zz" * 16),                         # not hex
            one_record(traceId="5B8EFFF798038103D269B633813FC6"),  # 15 bytes
            one_record(spanId="W7jhvn7DwbE="),                     # base64, not hex
            one_record(body={"intValue": "3.5"}),                  # not an integer
            one_record(body={"stringValue": "a", "intValue": "1"}),  # two members of a oneof
            {"resourceLogs": {}},                                  # wrong shape
            [],                                                    # not an object
        ]
        for i, body in enumerate(bad):
            with self.subTest(i=i, body=body):
                status, _, data = post_logs(self.r.port, body)
                self.assertEqual(status, 400, data)
                self.assertStatusBody(data, 3)
        for raw in (b"{", b'{"resourceLogs": [], "resourceLogs": []}', b"\xff\xfe"):
            with self.subTest(raw=raw):
                status, _, data = post_logs(self.r.port, raw)
                self.assertEqual(status, 400, data)
        st = state(self.r.port)
        self.assertEqual(st["protocol_errors"], len(bad) + 3)
        self.assertEqual(st["records"], 0)
        # Valid ids in either case, and empty ids, are fine.
        status, _, _ = post_logs(self.r.port, one_record(traceId="5b8efff798038103d269b633813fc60c", spanId=""))
        self.assertEqual(status, 200)

    def test_wrong_content_type_path_method(self):
        status, _, data = post_logs(self.r.port, VALID, content_type="application/x-protobuf")
        self.assertEqual(status, 415)
        self.assertStatusBody(data)
        status, _, data = post_logs(self.r.port, VALID, content_type="text/plain")
        self.assertEqual(status, 415)
        status, _, _ = post_logs(self.r.port, gzip.compress(b"{}"), headers={"Content-Encoding": "br"})
        self.assertEqual(status, 415)
        status, _, data = request(self.r.port, "POST", "/v1/traces", json.dumps(VALID).encode(),
                                  {"Content-Type": "application/json"})
        self.assertEqual(status, 404)
        self.assertStatusBody(data, 5)
        status, headers, data = request(self.r.port, "GET", "/v1/logs")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "POST")
        status, _, _ = request(self.r.port, "PUT", "/v1/logs", b"{}", {"Content-Type": "application/json"})
        self.assertEqual(status, 405)
        st = state(self.r.port)
        self.assertEqual(st["by_status"], {"415": 3, "404": 1, "405": 2})
        self.assertEqual(st["protocol_errors"], 6)
        self.assertEqual(st["requests"], 6)

    def test_throttling_modes(self):
        st = set_mode(self.r.port, "429", "2")
        self.assertEqual((st["mode"], st["retry_after"]), ("429", "2"))
        status, headers, data = post_logs(self.r.port, VALID)
        self.assertEqual(status, 429)
        self.assertEqual(headers["Retry-After"], "2")
        self.assertEqual(headers["Content-Type"], "application/json")
        body = self.assertStatusBody(data)
        self.assertEqual(body["details"][0]["retryDelay"], "2s")
        date = "Wed, 21 Oct 2026 07:28:00 GMT"
        set_mode(self.r.port, "503", date)
        status, headers, _ = post_logs(self.r.port, VALID)
        self.assertEqual((status, headers["Retry-After"]), (503, date))
        set_mode(self.r.port, "503")
        status, headers, _ = post_logs(self.r.port, VALID)
        self.assertEqual((status, headers.get("Retry-After")), (503, None))
        for mode in ("400", "413", "500"):
            set_mode(self.r.port, mode, "5")
            status, headers, data = post_logs(self.r.port, VALID)
            self.assertEqual(status, int(mode))
            self.assertIsNone(headers.get("Retry-After"))  # only on 429/503
            self.assertStatusBody(data)
        # A protocol violation still gets its real answer in a simulated-error mode.
        set_mode(self.r.port, "503")
        status, _, _ = post_logs(self.r.port, one_record(bogus=1))
        self.assertEqual(status, 400)
        self.assertEqual(self.r.records(), [])
        st = state(self.r.port)
        self.assertEqual(st["by_status"], {"429": 1, "503": 2, "400": 2, "413": 1, "500": 1})
        self.assertEqual((st["protocol_errors"], st["records"], st["bytes"]), (1, 0, 0))
        set_mode(self.r.port, "up")
        self.assertEqual(post_logs(self.r.port, VALID)[0], 200)
        self.assertEqual(len(self.r.records()), 2)

    def test_partial_success(self):
        set_mode(self.r.port, "partial")
        status, _, data = post_logs(self.r.port, VALID)
        self.assertEqual(status, 200)
        body = json.loads(data)
        self.assertEqual(body["partialSuccess"]["rejectedLogRecords"], "2")  # int64: a string
        self.assertTrue(body["partialSuccess"]["errorMessage"])
        self.assertEqual(self.r.records(), [])

    def test_bad_debug_requests(self):
        for body in ({"mode": "sideways"}, {"mode": "302"}, {}, {"mode": "429", "retry_after": "1\r\nX: y"}):
            status, _, _ = request(self.r.port, "POST", "/debug/mode", body)
            self.assertEqual(status, 400, body)
        self.assertEqual(state(self.r.port)["mode"], "up")
        status, _, _ = request(self.r.port, "GET", "/debug/nothing")
        self.assertEqual(status, 404)
        status, _, _ = request(self.r.control, "POST", "/v1/logs", VALID, {"Content-Type": "application/json"})
        self.assertEqual(status, 404)  # the control port takes /debug/* only
        self.assertEqual(state(self.r.port)["requests"], 0)

    def test_down_closes_the_listener_and_up_reopens_it(self):
        self.assertEqual(post_logs(self.r.port, VALID)[0], 200)
        st = set_mode(self.r.port, "down")
        self.assertEqual((st["mode"], st["listening"]), ("down", False))
        with self.assertRaises(ConnectionRefusedError):
            post_logs(self.r.port, VALID)
        with self.assertRaises(ConnectionRefusedError):
            state(self.r.port)
        st = state(self.r.control)
        self.assertEqual((st["mode"], st["port"]), ("down", self.r.port))
        st = set_mode(self.r.control, "up")
        self.assertTrue(st["listening"])
        self.assertEqual(st["port"], self.r.port)
        self.assertEqual(post_logs(self.r.port, VALID)[0], 200)
        self.assertEqual(len(self.r.records()), 4)
        # SIGUSR1 / SIGUSR2 do the same.
        self.r.proc.send_signal(signal.SIGUSR1)
        self._wait_listening(False)
        with self.assertRaises(ConnectionRefusedError):
            post_logs(self.r.port, VALID)
        self.r.proc.send_signal(signal.SIGUSR2)
        self._wait_listening(True)
        self.assertEqual(post_logs(self.r.port, VALID)[0], 200)

    def test_down_drops_requests_on_connections_opened_before(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.r.port, timeout=10)
        try:
            conn.request("POST", "/v1/logs", body=json.dumps(VALID), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            set_mode(self.r.control, "down")
            conn.request("POST", "/v1/logs", body=json.dumps(VALID), headers={"Content-Type": "application/json"})
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
                conn.getresponse()
        finally:
            conn.close()
        st = state(self.r.control)
        self.assertEqual((st["dropped"], st["requests"], st["records"]), (1, 2, 2))

    def _wait_listening(self, want):
        deadline = time.time() + 10
        while time.time() < deadline:
            if state(self.r.control)["listening"] == want:
                return
            time.sleep(0.05)
        self.fail(f"listening never became {want}")

    def test_drop_closes_the_connection_without_answering(self):
        set_mode(self.r.port, "drop")
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            post_logs(self.r.port, VALID)
        st = state(self.r.port)  # still listening
        self.assertEqual((st["dropped"], st["requests"], st["records"], st["by_status"]), (1, 1, 0, {}))

    def test_a_client_killed_mid_body_is_aborted_not_a_protocol_error(self):
        import socket
        body = json.dumps(VALID).encode()
        head = (f"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body) + 100}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", self.r.port)) as c:
            c.sendall(head + body)
        for _ in range(100):
            st = state(self.r.port)
            if st["aborted"]:
                break
            time.sleep(0.05)
        self.assertEqual((st["aborted"], st["protocol_errors"], st["records"]), (1, 0, 0))

    def test_reset(self):
        post_logs(self.r.port, VALID)
        post_logs(self.r.port, one_record(bogus=1))
        set_mode(self.r.port, "503")
        status, _, data = request(self.r.port, "POST", "/debug/reset")
        self.assertEqual(status, 200)
        st = json.loads(data)
        self.assertEqual((st["requests"], st["records"], st["bytes"], st["protocol_errors"], st["by_status"]),
                         (0, 0, 0, 0, {}))
        self.assertEqual(st["mode"], "503")


class StartOptionsTest(unittest.TestCase):
    def test_mode_and_retry_after_at_start(self):
        r = Receiver("--quiet", "--mode", "503", "--retry-after", "7")
        try:
            status, headers, _ = post_logs(r.port, VALID)
            self.assertEqual((status, headers["Retry-After"]), (503, "7"))
        finally:
            r.stop()

    def test_down_at_start(self):
        r = Receiver("--quiet", "--mode", "down")
        try:
            with self.assertRaises(ConnectionRefusedError):
                post_logs(r.port, VALID)
            set_mode(r.control, "up")
            self.assertEqual(post_logs(r.port, VALID)[0], 200)
        finally:
            r.stop()

    def test_body_limit_before_and_after_gunzip(self):
        r = Receiver("--quiet", "--max-body", "4096")
        try:
            status, headers, data = post_logs(r.port, b"{" + b" " * 5000 + b"}")
            self.assertEqual(status, 413)
            self.assertEqual(headers["Content-Type"], "application/json")
            bomb = gzip.compress(b"{" + b" " * 100000 + b"}")
            self.assertLess(len(bomb), 4096)
            status, _, _ = post_logs(r.port, bomb, headers={"Content-Encoding": "gzip"})
            self.assertEqual(status, 413)
            self.assertEqual(post_logs(r.port, VALID)[0], 200)
            self.assertEqual(state(r.port)["by_status"], {"413": 2, "200": 1})
        finally:
            r.stop()

    def test_ignore_unknown_fields_option(self):
        r = Receiver("--quiet", "--ignore-unknown-fields")
        try:
            status, _, _ = post_logs(r.port, one_record(bogus={"x": 1}))
            self.assertEqual(status, 200)
            self.assertEqual(r.records()[0]["body"], "x")
            status, _, _ = post_logs(r.port, one_record(time_unix_nano="1"))  # still not OTLP
            self.assertEqual(status, 400)
        finally:
            r.stop()

    def test_chunked_body(self):
        r = Receiver("--quiet")
        try:
            data = json.dumps(VALID).encode()
            conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=10)
            conn.request("POST", "/v1/logs", body=iter([data[:100], data[100:]]),
                         headers={"Content-Type": "application/json"}, encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (200, b"{}"))
            conn.close()
            self.assertEqual(len(r.records()), 2)
        finally:
            r.stop()


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
class TLSTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="otlp-receiver-pki.")
        d = cls.pki

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca", "-days", "2")
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        with open(os.path.join(d, "client.ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        for name in ("server", "client"):
            run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.pki, name)

    def context(self, with_cert):
        ctx = ssl.create_default_context(cafile=self.p("ca.crt"))
        if with_cert:
            ctx.load_cert_chain(self.p("client.crt"), self.p("client.key"))
        return ctx

    def test_client_certificate_required(self):
        r = Receiver("--quiet", "--cert", self.p("server.crt"), "--key", self.p("server.key"),
                     "--client-ca", self.p("ca.crt"))
        try:
            status, _, data = post_logs(r.port, VALID, context=self.context(True))
            self.assertEqual((status, json.loads(data)), (200, {}))
            with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError,
                                    http.client.RemoteDisconnected)):
                post_logs(r.port, VALID, context=self.context(False))
            st = state(r.control)  # the control port is plain HTTP
            self.assertEqual((st["records"], st["tls_failures"]), (2, 1))
            # down/up keep TLS.
            set_mode(r.control, "down")
            with self.assertRaises(ConnectionRefusedError):
                post_logs(r.port, VALID, context=self.context(True))
            set_mode(r.control, "up")
            self.assertEqual(post_logs(r.port, VALID, context=self.context(True))[0], 200)
        finally:
            r.stop()


if __name__ == "__main__":
    unittest.main()
