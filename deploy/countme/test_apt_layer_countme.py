#!/usr/bin/env python3
"""Tests for apt-layer-countme. Run with a Python that has mirrors-countme installed:

    .build/pytools/bin/python deploy/countme/test_apt_layer_countme.py [-v]

The nginx test needs /usr/sbin/nginx (Debian's nginx-light is enough) and is skipped without it.
"""
import csv
import gzip
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "apt-layer-countme")
NGINX = "/usr/sbin/nginx"

_loader = SourceFileLoader("apt_layer_countme", TOOL)
countme = module_from_spec(spec_from_loader("apt_layer_countme", _loader))
_loader.exec_module(countme)

UA = "apt-layer (Debian GNU/Linux 12; ; Linux.x86_64)"
UA_SERVER = "apt-layer (Debian GNU/Linux 12; server; Linux.aarch64)"
UA_NOVERSION = "apt-layer (Debian GNU/Linux; ; Linux.x86_64)"
LIBDNF = "libdnf (Fedora Linux 39; workstation; Linux.x86_64)"
OSTREE = "rpm-ostree (Fedora Linux 39; coreos; Linux.x86_64)"

IPS = ["192.0.2.10", "192.0.2.11", "198.51.100.7", "203.0.113.99", "2001:db8::1", "2001:db8:0:1::abcd",
       "fe80::1", "10.1.2.3"]


def line(ip, when, request, status, ua, nbytes="512", referrer="-"):
    return f'{ip} - - [{when}] "{request}" {status} {nbytes} "{referrer}" "{ua}"\n'


# Week A = 2024-01-29 .. 2024-02-04, week B = 2024-02-05 .. 2024-02-11 (Mondays 00:00 UTC).
LOG = "".join([
    # Counted.
    line("192.0.2.10", "04/Feb/2024:23:59:59 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, UA),  # A, one second before
    line("2001:db8::1", "05/Feb/2024:00:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, UA),  # B, at the boundary
    line("192.0.2.11", "05/Feb/2024:00:59:59 +0100", "GET /policy.yaml?countme=2 HTTP/1.1", 200, UA),  # A (23:59:59 UTC)
    line("198.51.100.7", "05/Feb/2024:01:00:00 +0100", "GET /policy.yaml?countme=2 HTTP/1.1", 200, UA),  # B (00:00:00 UTC)
    line("203.0.113.99", "04/Feb/2024:18:59:59 -0500", "GET /policy.yaml?countme=2 HTTP/2.0", 304, UA, "0"),  # A
    line("2001:db8:0:1::abcd", "07/Feb/2024:12:00:00 +0000",
         "GET /policy.yaml?stream=stable&countme=3 HTTP/2.0", 200, UA_SERVER),  # B
    line("192.0.2.10", "08/Feb/2024:12:00:00 +0000", "GET /policy.yaml?countme=3 HTTP/1.1", 200, UA_SERVER),  # B
    line("fe80::1", "30/Jan/2024:08:00:00 +0000", "GET /policy.yaml?countme=4 HTTP/1.1", 302, UA, "0"),  # A
    line("10.1.2.3", "11/Feb/2024:23:59:59 +0000", "GET /policy.yaml?countme=4 HTTP/1.1", 200, UA_NOVERSION),  # B, last second
    line("10.1.2.3", "12/Feb/2024:00:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, UA_NOVERSION),  # week C
    # Ignored: other User-Agents.
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, LIBDNF),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /metalink?repo=fedora-39&arch=x86_64&countme=2 HTTP/1.1",
         200, LIBDNF),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, OSTREE),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, "apt-layerd/1.0"),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, UA + " extra"),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, "x " + UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, "-"),
    # Ignored: no countme, or not 1..4.
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?stream=stable HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=5 HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=0 HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme= HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?notcountme=1 HTTP/1.1", 200, UA),
    # Ignored: failures, and not GET.
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 404, UA),
    line("2001:db8::1", "05/Feb/2024:10:00:00 +0000", "GET /policy.yml?countme=2 HTTP/1.1", 404, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 400, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 500, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 503, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "POST /policy.yaml?countme=1 HTTP/1.1", 200, UA),
    line("192.0.2.10", "05/Feb/2024:10:00:00 +0000", "HEAD /policy.yaml?countme=1 HTTP/1.1", 200, UA),
    # Ignored: a TLS handshake sent to a plain-HTTP port, as nginx logs it.
    '192.0.2.10 - - [05/Feb/2024:10:00:00 +0000] "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03" 400 157 "-" "-"\n',
    "\n",
    # Malformed.
    "this is not an access log line\n",
    '198.51.100.7 - - [05/Feb/2024:10:00:00 +0000] "GET /policy.yaml?countme=1 HTTP/1.1" 200 512 "-" "apt-la\n',
    line("198.51.100.7", "05/Foo/2024:10:00:00 +0000", "GET /policy.yaml?countme=1 HTTP/1.1", 200, UA),
])

EXPECTED = {
    # (week_start, week_end, os_name, os_version, os_variant, os_arch, sys_age): hits
    ("2024-01-29", "2024-02-04", "Debian GNU/Linux", "12", "", "x86_64", 1): 1,
    ("2024-01-29", "2024-02-04", "Debian GNU/Linux", "12", "", "x86_64", 2): 2,
    ("2024-01-29", "2024-02-04", "Debian GNU/Linux", "12", "", "x86_64", 4): 1,
    ("2024-02-05", "2024-02-11", "Debian GNU/Linux", "12", "", "x86_64", 1): 1,
    ("2024-02-05", "2024-02-11", "Debian GNU/Linux", "12", "", "x86_64", 2): 1,
    ("2024-02-05", "2024-02-11", "Debian GNU/Linux", "12", "server", "aarch64", 3): 2,
    ("2024-02-05", "2024-02-11", "Debian GNU/Linux", "", "", "x86_64", 4): 1,
    ("2024-02-12", "2024-02-18", "Debian GNU/Linux", "", "", "x86_64", 1): 1,
}
COLUMNS = ["week_start", "week_end", "hits", "os_name", "os_version", "os_variant", "os_arch", "sys_age"]
IPV4_RE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def run_tool(*args, stdin=None):
    p = subprocess.run([sys.executable, TOOL, *args], input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def csv_totals(out):
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == COLUMNS, rows[0]
    return {(r[0], r[1], r[3], r[4], r[5], r[6], int(r[7])): int(r[2]) for r in rows[1:]}


def json_totals(out):
    totals = {}
    for text in out.splitlines():
        o = json.loads(text)
        assert list(o) == COLUMNS, list(o)
        totals[(o["week_start"], o["week_end"], o["os_name"], o["os_version"], o["os_variant"], o["os_arch"],
                o["sys_age"])] = o["hits"]
    return totals


def tally(stderr):
    m = re.search(r"(\d+) lines: (\d+) counted, (\d+) ignored, (\d+) malformed", stderr)
    assert m, stderr
    return tuple(int(g) for g in m.groups())


class LogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="apt-layer-countme-test.")
        cls.log = os.path.join(cls.dir, "access.log")
        with open(cls.log, "w") as f:
            f.write(LOG)
        cls.gz = os.path.join(cls.dir, "access.log.2.gz")
        with gzip.open(cls.gz, "wt") as f:
            f.write(LOG)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def assertNoAddresses(self, out):
        for ip in IPS:
            self.assertNotIn(ip, out)
        self.assertIsNone(IPV4_RE.search(out), out)
        self.assertNotIn("2001:db8", out)
        self.assertNotIn("/policy.yaml", out)
        self.assertNotIn("stream=stable", out)

    def test_csv_totals_are_exact(self):
        rc, out, err = run_tool(self.log)
        self.assertEqual(rc, 0, err)
        self.assertEqual(csv_totals(out), EXPECTED)
        n_lines = len([x for x in LOG.splitlines() if x.strip()])
        self.assertEqual(tally(err), (n_lines, 10, n_lines - 10 - 3, 3))
        self.assertNoAddresses(out)
        self.assertNoAddresses(err)
        # Sorted by week, then the other columns.
        rows = list(csv.reader(io.StringIO(out)))[1:]
        self.assertEqual([r[0] for r in rows], sorted(r[0] for r in rows))

    def test_json_totals_are_exact(self):
        rc, out, err = run_tool("--json", self.log)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json_totals(out), EXPECTED)
        self.assertNoAddresses(out)

    def test_gzip_stdin_and_several_files(self):
        rc, out, _ = run_tool(self.gz)
        self.assertEqual(csv_totals(out), EXPECTED)
        with open(self.gz, "rb") as f:
            rc, out, _ = run_tool(stdin=f.read())
        self.assertEqual((rc, csv_totals(out)), (0, EXPECTED))
        rc, out, err = run_tool("-", self.log, stdin=LOG.encode())
        self.assertEqual(csv_totals(out), {k: 2 * v for k, v in EXPECTED.items()})
        self.assertEqual(tally(err)[3], 6)

    def test_since_until(self):
        rc, out, err = run_tool("--since", "2024-02-05", "--until", "2024-02-11", self.log)
        self.assertEqual(rc, 0, err)
        self.assertEqual(csv_totals(out), {k: v for k, v in EXPECTED.items() if k[0] == "2024-02-05"})
        self.assertIn("5 outside the weeks asked for", err)
        # Any day of the week selects that week.
        rc, out, _ = run_tool("--since", "2024-02-04", "--until", "2024-02-04", "--json", self.log)
        self.assertEqual(json_totals(out), {k: v for k, v in EXPECTED.items() if k[0] == "2024-01-29"})
        rc, out, err = run_tool("--since", "last-week", self.log)
        self.assertEqual(csv_totals(out), {})
        rc, _, err = run_tool("--since", "someday", self.log)
        self.assertEqual(rc, 2)
        self.assertIn("--since", err)

    def test_path_filter_quiet_and_no_header(self):
        rc, out, err = run_tool("--path", "/other.yaml", "-q", self.log)
        self.assertEqual(out.strip(), ",".join(COLUMNS))
        self.assertIn("3 malformed", err)  # -q still reports malformed lines
        rc, out, err = run_tool("--path", "/policy.yaml", "--no-header", self.log)
        rows = list(csv.reader(io.StringIO(out)))
        self.assertEqual(len(rows), len(EXPECTED))
        rc, out, err = run_tool("-q", stdin=b"")
        self.assertEqual((rc, out.strip(), err), (0, ",".join(COLUMNS), ""))

    def test_missing_file(self):
        rc, out, err = run_tool(os.path.join(self.dir, "nope.log"))
        self.assertEqual(rc, 2)
        self.assertIn("nope.log", err)
        self.assertEqual(out, "")


class PartsTest(unittest.TestCase):
    def ua(self, text):
        m = countme.APT_LAYER_USER_AGENT_RE.fullmatch(text)
        return m and (m["os_name"], m["os_version"] or "", m["os_variant"], m["os_arch"])

    def test_user_agent_pattern(self):
        self.assertEqual(self.ua(UA), ("Debian GNU/Linux", "12", "", "x86_64"))
        self.assertEqual(self.ua(UA_SERVER), ("Debian GNU/Linux", "12", "server", "aarch64"))
        self.assertEqual(self.ua(UA_NOVERSION), ("Debian GNU/Linux", "", "", "x86_64"))
        self.assertEqual(self.ua("apt-layer (Ubuntu 24.04; ; Linux.riscv64)"), ("Ubuntu", "24.04", "", "riscv64"))
        self.assertEqual(self.ua("apt-layer (Debian GNU/Linux trixie/sid; ; Linux.x86_64)"),
                         ("Debian GNU/Linux trixie/sid", "", "", "x86_64"))
        for bad in (LIBDNF, OSTREE, "apt-layer", "apt-layer (Debian 12; ; Linux.)",
                    "apt-layer (Debian 12; ; FreeBSD.amd64)", "apt-layer (Debian (x) 12; ; Linux.x86_64)",
                    "apt-layer/1.0 (Debian 12; ; Linux.x86_64)"):
            self.assertIsNone(self.ua(bad), bad)

    def test_weeks_are_rpm_ostree_windows(self):
        monday = 1707091200  # 2024-02-05 00:00:00 UTC
        self.assertEqual(countme.COUNTME_EPOCH, 345600)
        self.assertEqual(countme.WEEK_LEN, 604800)
        self.assertEqual((monday - 345600) % 604800, 0)
        self.assertEqual(countme.weeknum(monday) - countme.weeknum(monday - 1), 1)
        start, end = countme.daterange(countme.weeknum(monday))
        self.assertEqual((start.isoformat(), end.isoformat()), ("2024-02-05", "2024-02-11"))
        self.assertEqual(countme.week_of("2024-02-11"), countme.weeknum(monday))
        self.assertEqual(countme.week_of("last-week", now=monday), countme.weeknum(monday) - 1)
        self.assertEqual(countme.week_of("this-week", now=monday), countme.weeknum(monday))

    def test_nginx_unescape(self):
        self.assertEqual(countme.nginx_unescape("Caf\\xC3\\xA9 OS"), "Café OS")
        self.assertEqual(countme.nginx_unescape("plain"), "plain")


def free_port(families):
    """A TCP port free on every (family, address) given."""
    for _ in range(50):
        with socket.socket(families[0][0]) as s:
            s.bind((families[0][1], 0))
            port = s.getsockname()[1]
        ok = True
        for fam, addr in families[1:]:
            try:
                with socket.socket(fam) as s:
                    s.bind((addr, port))
            except OSError:
                ok = False
        if ok:
            return port
    raise RuntimeError("no free port")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
{user}
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log combined;
    client_body_temp_path {tmp}/temp/body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    types {{ application/yaml yaml; }}
    default_type application/octet-stream;

    # As in README.md: a client-certificate-gated policy still answers countme requests (which never
    # carry the client certificate) with 204, so that they are logged as a success.
    map "$ssl_client_verify:$arg_countme" $policy_access {{
        ~^SUCCESS:         allow;
        ~^[^:]*:[1-4]$     countme;
        default            deny;
    }}

    server {{
        listen 127.0.0.1:{port}{ssl};
        {listen6}
        {tls}
        root {tmp}/www;
        location = /policy.yaml {{ }}
        location = /private/policy.yaml {{
            if ($policy_access = countme) {{ return 204; }}
            if ($policy_access = deny)    {{ return 403; }}
        }}
    }}
}}
"""

NGINX_TLS = """ssl_certificate {pki}/server.crt;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {pki}/ca.crt;
        ssl_verify_client optional;"""


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl command)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-fleet-ca", "-days", "2")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


@unittest.skipUnless(os.access(NGINX, os.X_OK), "needs " + NGINX)
class NginxTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="apt-layer-countme-nginx.")
        self.proc = None
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.stop_nginx)  # always, also when setUp or the test fails with nginx running
        os.makedirs(os.path.join(self.tmp, "www", "private"))
        os.makedirs(os.path.join(self.tmp, "temp"))
        for rel in ("www/policy.yaml", "www/private/policy.yaml"):
            with open(os.path.join(self.tmp, rel), "w") as f:
                f.write("fleet: test\n")
        self.ipv6 = have_ipv6_loopback()
        self.scheme = "http"
        self.context = None

    def start_nginx(self, tls=False):
        families = [(socket.AF_INET, "127.0.0.1")]
        if self.ipv6 and not tls:
            families.append((socket.AF_INET6, "::1"))
        user = f"user {pwd.getpwuid(0).pw_name};" if os.geteuid() == 0 else ""
        for attempt in range(5):
            self.port = free_port(families)
            conf = os.path.join(self.tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(
                    tmp=self.tmp, port=self.port, user=user, ssl=" ssl" if tls else "",
                    listen6=f"listen [::1]:{self.port};" if len(families) > 1 else "",
                    tls=NGINX_TLS.format(pki=self.tmp) if tls else ""))
            self.proc = subprocess.Popen(
                [NGINX, "-p", self.tmp + "/", "-c", conf, "-e", os.path.join(self.tmp, "error.log"),
                 "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            self.stop_nginx()
            if "Address already in use" not in err + self.error_log():
                self.fail(f"nginx did not start: {err} {self.error_log()}")
        self.fail("nginx: no free port after 5 attempts")

    def error_log(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop_nginx(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful shutdown: workers finish, logs are written
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def get(self, path, ua, host="127.0.0.1", context=None):
        url = f"{self.scheme}://{'[::1]' if host == '::1' else host}:{self.port}{path}"
        req = urllib.request.Request(url, headers={"User-Agent": ua})
        handlers = [urllib.request.ProxyHandler({})]
        if self.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=context or self.context))
        try:
            with urllib.request.build_opener(*handlers).open(req, timeout=10) as resp:
                resp.read()
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    def check_totals(self, expect, not_counted, week_before):
        week_after = countme.weeknum(time.time())
        self.stop_nginx()
        log = os.path.join(self.tmp, "access.log")
        with open(log) as f:
            raw = f.read()
        self.assertIn("127.0.0.1", raw)  # the log has addresses; the output must not
        total = sum(expect.values())
        self.assertEqual(len(raw.splitlines()), total + not_counted)
        rc, out, err = run_tool(log)
        self.assertEqual(rc, 0, err)
        got = csv_totals(out)
        self.assertNotIn("127.0.0.1", out + err)
        self.assertNotIn("::1", out)
        self.assertEqual(tally(err), (total + not_counted, total, not_counted, 0))
        self.assertEqual(sum(got.values()), total)
        if week_before == week_after:  # (a run across Monday 00:00 UTC splits the hits)
            start, end = (d.isoformat() for d in countme.daterange(week_before))
            self.assertEqual(got, {(start, end, *k): v for k, v in expect.items()})
            rc, out, err = run_tool("--json", "--since", "this-week", log)
            self.assertEqual(json_totals(out), {(start, end, *k): v for k, v in expect.items()})
        return raw

    def test_real_nginx_log(self):
        self.start_nginx()
        week_before = countme.weeknum(time.time())
        expect = {}

        def counted(ua_fields, bucket):
            key = (*ua_fields, bucket)
            expect[key] = expect.get(key, 0) + 1

        debian = ("Debian GNU/Linux", "12", "", "x86_64")
        server = ("Debian GNU/Linux", "12", "server", "aarch64")
        for n in (1, 1, 2, 3, 4):
            self.assertEqual(self.get(f"/policy.yaml?countme={n}", UA), 200)
            counted(debian, n)
        self.assertEqual(self.get("/policy.yaml?stream=stable&countme=2", UA_SERVER), 200)
        counted(server, 2)
        self.assertEqual(self.get("/private/policy.yaml?countme=4", UA_SERVER), 204)
        counted(server, 4)
        if self.ipv6:
            self.assertEqual(self.get("/policy.yaml?countme=3", UA, host="::1"), 200)
            counted(debian, 3)
        # Not counted.
        self.assertEqual(self.get("/private/policy.yaml", UA), 403)
        self.assertEqual(self.get("/private/policy.yaml?countme=9", UA), 403)
        self.assertEqual(self.get("/missing.yaml?countme=1", UA), 404)
        self.assertEqual(self.get("/policy.yaml?countme=1", LIBDNF), 200)
        self.assertEqual(self.get("/policy.yaml?countme=1", "Python-urllib/3"), 200)
        self.assertEqual(self.get("/policy.yaml", UA), 200)
        self.assertEqual(self.get("/policy.yaml?countme=0", UA), 200)
        raw = self.check_totals(expect, 7, week_before)
        if self.ipv6:
            self.assertIn("::1", raw)

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl command")
    def test_real_nginx_mtls_policy(self):
        """README's client-certificate setup: the fleet fetches the policy with its certificate,
        countme requests come without one and are answered 204 (and counted)."""
        make_pki(self.tmp)
        self.start_nginx(tls=True)
        self.scheme = "https"
        with_cert = ssl.create_default_context(cafile=os.path.join(self.tmp, "ca.crt"))
        with_cert.load_cert_chain(os.path.join(self.tmp, "client.crt"), os.path.join(self.tmp, "client.key"))
        self.context = ssl.create_default_context(cafile=os.path.join(self.tmp, "ca.crt"))  # no client cert
        week_before = countme.weeknum(time.time())
        debian = ("Debian GNU/Linux", "12", "", "x86_64")
        # The agent's policy fetch (client certificate, its own User-Agent): served, not counted.
        self.assertEqual(self.get("/private/policy.yaml", "apt-layerd/1.0", context=with_cert), 200)
        # countme, no certificate: 204, counted.
        self.assertEqual(self.get("/private/policy.yaml?countme=1", UA), 204)
        self.assertEqual(self.get("/private/policy.yaml?countme=3", UA), 204)
        # No certificate, no countme: refused, not counted.
        self.assertEqual(self.get("/private/policy.yaml", UA), 403)
        self.check_totals({(*debian, 1): 1, (*debian, 3): 1}, 2, week_before)


if __name__ == "__main__":
    unittest.main()
