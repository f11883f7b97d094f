#!/usr/bin/env python3
"""A protocol-exact OTLP/HTTP logs receiver (JSON encoding) for tests.

Every body is parsed with the official protobuf definitions (opentelemetry-proto:
ExportLogsServiceRequest) by google.protobuf.json_format, strictly, and each accepted log record is
appended as one JSON line to --out. A control mode simulates outages and errors.

  otlp-receiver.py [--host 127.0.0.1] [--port 0] [--out FILE] [--mode MODE] [--retry-after V]
                   [--cert C --key K [--client-ca CA]] [--control-port 0] [--max-body BYTES]
                   [--ignore-unknown-fields] [--quiet]

Ready when stdout shows `LISTENING <port>` (then `CONTROL <port>`), flushed; SIGTERM/SIGINT stop it.

Modes (--mode at start, POST /debug/mode at run time, SIGUSR1 = down, SIGUSR2 = up):
  up        accept (200, records written)
  down      the OTLP listener is closed (connect() is refused); `up` re-opens it on the same port.
            A request that still arrives on a connection opened before is read and the connection
            closed without an answer. /debug/* stays reachable on the control port.
  drop      keep listening, but read each request and close the connection without answering
            ("the server disconnects without returning a response")
  partial   200 with partialSuccess {rejectedLogRecords: all, errorMessage}; nothing written
  400..599  answer that status with a google.rpc.Status body (e.g. 400, 413, 429, 503); on 429 and
            503, Retry-After is sent when a retry_after was given (seconds or an HTTP-date,
            verbatim). Nothing is written.
Whatever the mode (but down/drop), a request that breaks the protocol is answered with the real
4xx and counted in protocol_errors: a misbehaving client is never hidden behind a simulated error.

Debug API (on the OTLP port and on the plain-HTTP control port; not counted in the statistics):
  GET  /debug/state   {"mode", "retry_after", "listening", "port", "requests", "records", "bytes",
                       "protocol_errors", "dropped", "aborted", "tls_failures", "by_status": {"200": n, ...},
                       "errors": [last 20 {"status", "message"}]}
       requests: every non-/debug request that reached the OTLP port (dropped ones included);
       bytes: request-body bytes as received (before gunzip) of the requests answered 200.
  POST /debug/mode    {"mode": "429", "retry_after": "2"} -> 200 and the new state; 400 if invalid
  POST /debug/reset   zero the counters (the mode stays) -> 200 and the new state

Output line per record (--out, flushed after each line):
  {"received": unix float, "resource": {key: value}, "scope": name, "scopeVersion": version,
   "timeUnixNano": int, "observedTimeUnixNano": int, "severityNumber": int, "severityText": str,
   "eventName": str, "attributes": {key: value}, "body": value}
Values are AnyValue converted to plain JSON: kvlistValue -> object, arrayValue -> list,
stringValue -> str, intValue -> int, doubleValue -> float (NaN/Infinity as those strings),
boolValue -> bool, bytesValue -> base64 str, an empty AnyValue -> null.

OTLP specification points followed (opentelemetry-proto docs/specification.md, OTLP/HTTP):
  * Requests are HTTP POST to the default path /v1/logs; the body is an ExportLogsServiceRequest.
    Other paths -> 404, other methods -> 405 (Allow: POST).
  * JSON encoding: "Content-Type: application/json" on request and response; the response uses the
    same Content-Type as the request. Only JSON is accepted here: application/x-protobuf (which
    servers SHOULD also accept) and any other type -> 415, because the agent must send JSON.
  * JSON deviations from the proto3 mapping are enforced: traceId/spanId are hex strings (16/8
    bytes, case-insensitive), not base64; enum values (severityNumber) MUST be integers, never
    names; keys MUST be lowerCamelCase (the original snake_case names are refused). 64-bit integers
    are accepted as decimal strings or numbers.
  * Compression: none and gzip MUST be supported ("Content-Encoding: gzip"); other codings -> 415.
  * The server MUST limit the body size, including after decompression (RECOMMENDED 20 MiB, the
    --max-body default); over it -> 413 Content Too Large.
  * Full success: HTTP 200, body an ExportLogsServiceResponse with partial_success unset ("{}").
    An empty request is a success.
  * Partial success: HTTP 200 with partialSuccess.rejectedLogRecords and an English errorMessage.
  * Failures: 4xx/5xx whose body is a google.rpc.Status ({"code", "message", "details"}); bad
    data -> 400 with a google.rpc.BadRequest in details. Retryable: 429, 502, 503, 504.
  * Throttling: 429 or 503, optionally with Retry-After (passed through verbatim); RetryInfo in
    details when it is a number of seconds.
  * "If the server disconnects without returning a response, the client SHOULD retry": mode drop.
    "If the client cannot connect to the server, the client SHOULD retry": mode down.
  * HTTP/1.1 with keep-alive ("The client SHOULD keep the connection alive between requests").
Deliberate deviation: the spec says OTLP/JSON receivers MUST ignore unknown fields. This fixture is
strict by default (json_format.Parse without ignore_unknown_fields: an unknown field -> 400 and a
protocol error), because the agent and this receiver share one proto version and an unknown field
means a misspelt key in the agent. --ignore-unknown-fields gives the spec's behaviour.
"""
import argparse
import base64
import binascii
import json
import math
import signal
import socket
import ssl
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

LOGS_PATH = "/v1/logs"
DEFAULT_MAX_BODY = 20 * 1024 * 1024
NAMED_MODES = ("up", "down", "drop", "partial")
# google.rpc.Code for the HTTP statuses this receiver answers (the spec does not use Status.code;
# the HTTP <-> gRPC mapping of google/rpc/code.proto is used for a meaningful value).
RPC_CODE = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 409: 10, 411: 3, 413: 8, 415: 3, 429: 8,
            500: 13, 501: 12, 502: 14, 503: 14, 504: 4}
# OTLP/JSON: these bytes fields are hex, with these lengths in bytes.
HEX_ID_FIELDS = {"trace_id": 16, "span_id": 8}


def valid_mode(value):
    value = str(value)
    if value in NAMED_MODES:
        return value
    if value.isdigit() and 400 <= int(value) <= 599:
        return value
    raise ValueError(f"mode must be one of {', '.join(NAMED_MODES)} or an HTTP status 400..599, not {value!r}")


def valid_retry_after(value):
    if value is None:
        return None
    value = str(value)
    if not value or any(c in value for c in "\r\n\0"):
        raise ValueError("retry_after must be a non-empty one-line string")
    return value


class ClientAborted(Exception):
    """The client closed the connection before the whole body arrived (e.g. it was killed): not a
    protocol violation, and there is nobody to answer."""


class ProtocolError(Exception):
    def __init__(self, status, message, field=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


# ---------------------------------------------------------------------------------------------
# OTLP/JSON checks the proto3 JSON parser does not make, and conversion of hex ids to base64.


def _is_repeated(field):
    rep = getattr(field, "is_repeated", None)
    if rep is not None:
        return rep
    return field.label == FieldDescriptor.LABEL_REPEATED


def otlp_json_normalize(descriptor, obj, path, ignore_unknown):
    """Walk `obj` (a decoded JSON object for message `descriptor`); refuse what OTLP/JSON forbids
    and rewrite hex traceId/spanId to the base64 json_format expects. Shapes json_format itself
    refuses (a list where an object is due, ...) are left for it to report."""
    if not isinstance(obj, dict):
        return obj
    by_json = {f.json_name: f for f in descriptor.fields}
    by_name = {f.name: f for f in descriptor.fields}
    out = {}
    for key, value in obj.items():
        here = f"{path}.{key}"
        field = by_json.get(key)
        if field is None:
            if key in by_name:
                raise ProtocolError(400, f"{here}: OTLP/JSON keys are lowerCamelCase; use "
                                         f"{by_name[key].json_name!r}, not {key!r}", here)
            if ignore_unknown:
                continue
            out[key] = value  # json_format reports it
            continue
        values = value if _is_repeated(field) and isinstance(value, list) else None
        items = values if values is not None else [value]
        fixed = []
        for i, item in enumerate(items):
            where = f"{here}[{i}]" if values is not None else here
            if item is None:
                fixed.append(item)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                fixed.append(otlp_json_normalize(field.message_type, item, where, ignore_unknown))
            elif field.type == FieldDescriptor.TYPE_ENUM:
                if isinstance(item, bool) or not isinstance(item, int):
                    raise ProtocolError(400, f"{where}: OTLP/JSON enum values MUST be integers, "
                                             f"not {item!r}", where)
                fixed.append(item)
            elif field.type == FieldDescriptor.TYPE_BYTES and field.name in HEX_ID_FIELDS:
                size = HEX_ID_FIELDS[field.name]
                if not isinstance(item, str):
                    raise ProtocolError(400, f"{where}: must be a hex string", where)
                if item == "":
                    fixed.append(item)
                    continue
                try:
                    raw = bytes.fromhex(item)
                except ValueError:
                    raise ProtocolError(400, f"{where}: not hex: {item!r}", where)
                if len(raw) != size or len(item) != 2 * size:
                    raise ProtocolError(400, f"{where}: must be {size} bytes ({2 * size} hex digits)", where)
                fixed.append(base64.b64encode(raw).decode("ascii"))
            else:
                fixed.append(item)
        out[key] = fixed if values is not None else fixed[0]
    return out


def _no_duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ProtocolError(400, f"duplicate key {key!r}")
        seen[key] = value
    return seen


def parse_request(body_text, ignore_unknown):
    """ExportLogsServiceRequest from OTLP/JSON text, or ProtocolError(400)."""
    try:
        obj = json.loads(body_text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:
        raise ProtocolError(400, f"not JSON: {e}")
    if not isinstance(obj, dict):
        raise ProtocolError(400, "the body must be a JSON object (ExportLogsServiceRequest)")
    normalized = otlp_json_normalize(ExportLogsServiceRequest.DESCRIPTOR, obj,
                                     "ExportLogsServiceRequest", ignore_unknown)
    text = body_text if normalized == obj else json.dumps(normalized)
    try:
        if ignore_unknown:
            return json_format.Parse(text, ExportLogsServiceRequest(), ignore_unknown_fields=True)
        return json_format.Parse(text, ExportLogsServiceRequest())
    except json_format.ParseError as e:
        raise ProtocolError(400, str(e).replace("\n", " "))


def plain(value):
    """opentelemetry.proto.common.v1.AnyValue -> plain JSON value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return int(value.int_value)
    if kind == "double_value":
        d = value.double_value
        if math.isfinite(d):
            return d
        return "NaN" if math.isnan(d) else ("Infinity" if d > 0 else "-Infinity")
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    raise ProtocolError(400, f"unknown AnyValue kind {kind}")  # pragma: no cover


def attributes(kvs):
    return {kv.key: plain(kv.value) for kv in kvs}


def flatten(request, received):
    """One output dictionary per log record."""
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                yield {
                    "received": received,
                    "resource": resource,
                    "scope": sl.scope.name,
                    "scopeVersion": sl.scope.version,
                    "timeUnixNano": int(rec.time_unix_nano),
                    "observedTimeUnixNano": int(rec.observed_time_unix_nano),
                    "severityNumber": int(rec.severity_number),
                    "severityText": rec.severity_text,
                    "eventName": rec.event_name,
                    "attributes": attributes(rec.attributes),
                    "body": plain(rec.body) if rec.HasField("body") else None,
                }


def status_body(status, message, details=None):
    """google.rpc.Status in its JSON mapping."""
    body = {"code": RPC_CODE.get(status, 13 if status >= 500 else 9), "message": message}
    if details:
        body["details"] = details
    return body


# ---------------------------------------------------------------------------------------------
# State, listeners, handler


class Receiver:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.mode = args.mode
        self.retry_after = args.retry_after
        self.out = open(args.out, "a", encoding="utf-8") if args.out else None
        self.ssl_context = None
        if args.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
            if args.client_ca:
                ctx.load_verify_locations(cafile=args.client_ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            self.ssl_context = ctx
        self.reset()
        self.otlp = None  # the OTLP listener (None while down)
        self.port = None
        self.mode_lock = threading.Lock()

    def reset(self):
        with self.lock:
            self.requests = 0
            self.records = 0
            self.bytes = 0
            self.protocol_errors = 0
            self.dropped = 0
            self.aborted = 0
            self.tls_failures = 0
            self.by_status = {}
            self.errors = []

    def state(self):
        with self.lock:
            return {
                "mode": self.mode,
                "retry_after": self.retry_after,
                "listening": self.otlp is not None,
                "port": self.port,
                "requests": self.requests,
                "records": self.records,
                "bytes": self.bytes,
                "protocol_errors": self.protocol_errors,
                "dropped": self.dropped,
                "aborted": self.aborted,
                "tls_failures": self.tls_failures,
                "by_status": dict(self.by_status),
                "errors": list(self.errors),
            }

    def count(self, status=None, protocol_error=None, dropped=False, records=0, nbytes=0, aborted=False):
        with self.lock:
            if dropped:
                self.dropped += 1
            if aborted:
                self.aborted += 1
            if status is not None:
                key = str(status)
                self.by_status[key] = self.by_status.get(key, 0) + 1
            if protocol_error is not None:
                self.protocol_errors += 1
                self.errors.append({"status": status, "message": protocol_error})
                del self.errors[:-20]
            self.records += records
            self.bytes += nbytes

    def write_records(self, rows):
        if self.out is None:
            return
        with self.write_lock:
            for row in rows:
                self.out.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
                self.out.flush()

    # -- listeners

    def open_otlp(self, port):
        """Bind the OTLP listener (retrying briefly if the old socket is still in the way)."""
        deadline = time.monotonic() + 5
        while True:
            try:
                server = OTLPServer((self.args.host, port), Handler, self, otlp=True)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         name="otlp-listener", daemon=True).start()
        self.otlp = server
        self.port = server.server_address[1]

    def close_otlp(self):
        server = self.otlp
        if server is not None:
            server.shutdown()
            server.server_close()
            self.otlp = None  # only now: "listening" false means connect() is refused

    def set_mode(self, mode, retry_after=None):
        with self.mode_lock:
            with self.lock:
                self.mode = mode
                self.retry_after = retry_after
            if mode == "down" and self.otlp is not None:
                self.close_otlp()
            elif mode != "down" and self.otlp is None:
                self.open_otlp(self.port)


class OTLPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, receiver, otlp):
        self.receiver = receiver
        self.otlp = otlp  # False: the control listener (only /debug/*)
        self.ssl_context = receiver.ssl_context if otlp else None
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # TLS is wrapped here, in the connection's own thread, so that a slow or failing handshake
        # never blocks accept().
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        request.settimeout(10)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.receiver.lock:
                self.receiver.tls_failures += 1
            if not self.receiver.args.quiet:
                sys.stderr.write(f"otlp-receiver: TLS handshake with {client_address[0]} failed: {e}\n")
            return
        try:
            tls.settimeout(60)
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if not self.receiver.args.quiet:
            sys.stderr.write(f"otlp-receiver: connection from {client_address[0]}: {sys.exc_info()[1]!r}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "otlp-receiver-test"

    def version_string(self):
        return self.server_version

    @property
    def receiver(self):
        return self.server.receiver

    def log_message(self, fmt, *args):
        if not self.receiver.args.quiet:
            sys.stderr.write("otlp-receiver: %s %s\n" % (self.address_string(), fmt % args))

    # -- plumbing

    def send_json(self, status, obj, headers=(), close=False):
        data = (obj if isinstance(obj, str) else json.dumps(obj)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def read_body(self, limit):
        """The request body as sent (bytes); ProtocolError(413/411/400) when it cannot be read."""
        te = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if te:
            if te != "chunked":
                raise ProtocolError(400, f"unsupported Transfer-Encoding {te!r}")
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError(400, "bad chunked encoding")
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > limit:
                    raise ProtocolError(413, f"request body over {limit} bytes")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise ClientAborted()
                chunks.append(chunk)
                self.rfile.readline(8)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            if self.command in ("POST", "PUT", "PATCH"):
                raise ProtocolError(411, "Content-Length (or chunked encoding) required")
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            raise ProtocolError(400, f"bad Content-Length {length!r}")
        if n > limit:
            raise ProtocolError(413, f"request body of {n} bytes is over {limit} bytes")
        body = self.rfile.read(n)
        if len(body) < n:
            raise ClientAborted()
        return body

    def fail(self, err, read_ok=True):
        """Answer a protocol violation with the real status and a google.rpc.Status body."""
        details = None
        if err.status == 400:
            details = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": [{"field": err.field or "", "description": err.message}]}]
        self.receiver.count(status=err.status, protocol_error=err.message)
        headers = [("Allow", "POST")] if err.status == 405 else []
        self.send_json(err.status, status_body(err.status, err.message, details), headers,
                       close=not read_ok)

    def drop(self):
        """Close the connection without answering."""
        self.receiver.count(dropped=True)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if not self.receiver.args.quiet:
            sys.stderr.write(f"otlp-receiver: {self.command} {self.path}: dropped (mode {self.receiver.mode})\n")

    # -- dispatch

    def handle_any(self):
        path = urlsplit(self.path).path
        if path.startswith("/debug/"):
            return self.handle_debug(path)
        if not self.server.otlp:
            self.read_body_quietly()
            return self.send_json(404, status_body(404, "control port: only /debug/*"))
        with self.receiver.lock:
            self.receiver.requests += 1
            mode = self.receiver.mode
            retry_after = self.receiver.retry_after
        if mode in ("down", "drop"):
            self.read_body_quietly()  # read first: closing with unread data would send a reset
            return self.drop()
        limit = self.receiver.args.max_body
        try:
            body = self.read_body(limit)
        except ProtocolError as e:
            return self.fail(e, read_ok=False)
        except ClientAborted:
            self.receiver.count(aborted=True)
            self.close_connection = True
            return
        if path != LOGS_PATH:
            return self.fail(ProtocolError(404, f"no such path {path!r}; OTLP logs go to {LOGS_PATH}"))
        if self.command != "POST":
            return self.fail(ProtocolError(405, f"{self.command} {LOGS_PATH}: only POST"))
        try:
            request = self.decode(body, limit)
        except ProtocolError as e:
            return self.fail(e)
        nrecords = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
        if mode.isdigit():
            status = int(mode)
            headers, details = [], None
            if status in (429, 503) and retry_after is not None:
                headers.append(("Retry-After", retry_after))
                if retry_after.isdigit():
                    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": f"{int(retry_after)}s"}]
            self.receiver.count(status=status)
            msg = f"simulated {status} (test mode)"
            return self.send_json(status, status_body(status, msg, details), headers)
        response = ExportLogsServiceResponse()
        if mode == "partial":
            response.partial_success.rejected_log_records = nrecords
            response.partial_success.error_message = "all log records rejected (test mode partial)"
            self.receiver.count(status=200, nbytes=len(body))
        else:
            self.receiver.write_records(flatten(request, time.time()))
            self.receiver.count(status=200, records=nrecords, nbytes=len(body))
        self.send_json(200, json_format.MessageToJson(response, indent=None))

    def decode(self, body, limit):
        ctype = self.headers.get_content_type()  # lower-case, parameters removed
        if ctype != "application/json":
            raise ProtocolError(415, f"Content-Type {self.headers.get('Content-Type')!r}: this "
                                     "receiver takes OTLP/HTTP JSON only (application/json)")
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding == "gzip":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                data = d.decompress(body, limit + 1)
                if len(data) > limit:
                    raise ProtocolError(413, f"decompressed body over {limit} bytes")
                if not d.eof or d.unused_data:
                    raise ProtocolError(400, "gzip body truncated or followed by garbage")
            except zlib.error as e:
                raise ProtocolError(400, f"Content-Encoding gzip, but the body is not gzip: {e}")
            body = data
        elif encoding not in ("identity", ""):
            raise ProtocolError(415, f"Content-Encoding {encoding!r}: only gzip (or none)")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError(400, f"the body is not UTF-8: {e}")
        return parse_request(text, self.receiver.args.ignore_unknown_fields)

    def read_body_quietly(self):
        try:
            return self.read_body(self.receiver.args.max_body)
        except (ProtocolError, ClientAborted):
            self.close_connection = True
            return b""

    def handle_debug(self, path):
        try:
            body = self.read_body(64 * 1024)
        except ProtocolError as e:
            return self.send_json(e.status, status_body(e.status, e.message), close=True)
        if path == "/debug/state" and self.command in ("GET", "HEAD"):
            return self.send_json(200, self.receiver.state())
        if path == "/debug/mode" and self.command == "POST":
            try:
                obj = json.loads(body or b"{}")
                if not isinstance(obj, dict) or "mode" not in obj:
                    raise ValueError('body must be {"mode": ..., "retry_after": ...}')
                mode = valid_mode(obj["mode"])
                retry_after = valid_retry_after(obj.get("retry_after"))
            except ValueError as e:
                return self.send_json(400, status_body(400, str(e)))
            self.receiver.set_mode(mode, retry_after)
            return self.send_json(200, self.receiver.state())
        if path == "/debug/reset" and self.command == "POST":
            self.receiver.reset()
            return self.send_json(200, self.receiver.state())
        if path in ("/debug/state", "/debug/mode", "/debug/reset"):
            return self.send_json(405, status_body(405, "wrong method"))
        return self.send_json(404, status_body(404, f"no such debug path {path!r}"))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


def main(argv=None):
    p = argparse.ArgumentParser(description="Protocol-exact OTLP/HTTP JSON logs receiver for tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--control-port", type=int, default=0,
                   help="plain-HTTP port for /debug/* that stays up in mode down (0: a free one)")
    p.add_argument("--out", help="append one JSON line per accepted log record to this file")
    p.add_argument("--mode", type=valid_mode, default="up",
                   help="up, down, drop, partial or an HTTP status 400..599 (429, 503, 400, 413, ...)")
    p.add_argument("--retry-after", type=valid_retry_after,
                   help="Retry-After value sent on 429/503 (seconds or an HTTP-date, verbatim)")
    p.add_argument("--cert", help="TLS certificate (PEM); with --key")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY,
                   help="largest body, before and after gunzip (default 20 MiB); over it: 413")
    p.add_argument("--ignore-unknown-fields", action="store_true",
                   help="ignore unknown JSON fields as the OTLP spec says (default: 400)")
    p.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    args = p.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    if args.client_ca and not args.cert:
        p.error("--client-ca needs --cert and --key")

    receiver = Receiver(args)
    control = OTLPServer((args.host, args.control_port), Handler, receiver, otlp=False)
    threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.1},
                     name="control-listener", daemon=True).start()
    receiver.open_otlp(args.port)
    if args.mode == "down":
        receiver.close_otlp()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def switch(mode):
        threading.Thread(target=receiver.set_mode, args=(mode, None), daemon=True).start()

    signal.signal(signal.SIGUSR1, lambda *_: switch("down"))
    signal.signal(signal.SIGUSR2, lambda *_: switch("up"))

    print(f"LISTENING {receiver.port}", flush=True)
    print(f"CONTROL {control.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    receiver.close_otlp()
    control.shutdown()
    control.server_close()
    if receiver.out:
        receiver.out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
