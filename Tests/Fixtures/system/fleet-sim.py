#!/usr/bin/env python3
"""Fleet simulation: N hosts, each a real apt-layerd on its own tmpfs sysroot booted in the
booted-container harness (Tests/Fixtures/harness/boot-container.sh), with its own machine-id and client
certificate; one signed policy served by nginx over HTTPS (client certificate required); the OSTree
repository served by nginx over HTTP; the protocol-exact FleetLock server
(Tests/Fixtures/harness/fleetlock-server.py) over HTTPS. A new base release is composed and published
during the run and rolls through waves, a window and reboot slots; one canary fails its health
check and rolls back.

    fleet-sim.py --bin .build/debug [--hosts 20] [--slots 2] [--check] [--json FILE]

Prints a table of what it measured and checked. With --check, exits 1 when any property fails.
Needs root, nginx, ostree, bwrap, unshare, ssh-keygen, openssl, curl.
"""
import argparse, datetime, hashlib, hmac, json, os, random, re, shutil, signal, socket, ssl
import subprocess, sys, tempfile, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(FIXTURES))
FLEET, STREAM, SLOTS = "acme-prod", "stable", 2
# Every host's agent kills itself (SIGKILL) once right after journaling each of these driver
# states, before acting on it (FaultPoint "driver-STATE"); the supervisor restarts it in the same boot.
DRIVER_STATES = ["checking", "up-to-date", "update-available", "staging", "staged", "waiting", "finalizing", "rebooting",
                 "verifying", "healthy", "rolling-back", "failed"]
FAULTS = ",".join("driver-" + s for s in DRIVER_STATES)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


USED_PORTS = set()


def free_port():
    """A loopback port below the kernel's ephemeral range (outgoing connections never take it),
    never handed out twice in one run."""
    while True:
        port = random.randint(20000, 31999)
        if port in USED_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        USED_PORTS.add(port)
        return port


def utc(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# The pinned algorithm of docs/fleet.md, written independently of the Swift code.
def host_id(machine_id):
    return hmac.new(machine_id.encode(), b"apt-layer/host-id/v1", hashlib.sha256).hexdigest()[:32]


def bucket(fleet, salt, hid):
    d = hashlib.sha256(b"apt-layer/bucket/v1\0" + fleet.encode() + b"\0" + salt.encode() + b"\0" + hid.encode()).digest()
    return int.from_bytes(d[:8], "big") % 10000


def wave_of(b, waves, published):
    prev = 0
    for i, (name, until, after, ramp) in enumerate(waves):
        if b < until:
            return i, name, published + after + ramp * (b - prev) // (until - prev)
        prev = until
    return None, None, None


class Sim:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.cli = f"{self.bin}/apt-layer"
        self.work = tempfile.mkdtemp(prefix="apt-layer-fleet.")
        self.procs = []
        self.hosts = []
        self.results = []  # (property, ok, detail)
        self.measure = {}
        self.rss = {}
        self.stop_sampling = False

    # ---------- setup ----------
    def setup(self):
        w = self.work
        sh(f"mount -t tmpfs -o size=1G tmpfs {w}")
        sh(f"{FIXTURES}/builders/make-debs.sh {w}/fx >/dev/null")
        sh(f"{FIXTURES}/builders/make-rootfs.sh {w}/rootfs1 {w}/fx/debs {w}/fx/repo r1")
        sh(f"{ROOT}/scripts/make-test-pki.sh {w}/pki")
        os.makedirs(f"{w}/keys")
        signers = ""
        for name in ["alice", "mallory"]:
            sh(f"ssh-keygen -q -t ed25519 -N '' -C {name} -f {w}/keys/{name}")
            if name == "alice":
                signers += "ops@acme " + " ".join(open(f"{w}/keys/{name}.pub").read().split()[:2]) + "\n"
        open(f"{w}/keys/allowed_signers", "w").write(signers)
        # nginx: the policy over HTTPS with a client certificate, the OSTree repository over HTTP.
        os.makedirs(f"{w}/www")
        os.makedirs(f"{w}/nginx")
        self.https, self.http, self.lockport = free_port(), free_port(), free_port()
        open(f"{w}/nginx.conf", "w").write(f"""daemon off; user root; worker_processes 2; pid {w}/nginx/pid; error_log {w}/nginx/error.log;
events {{ worker_connections 1024; }}
http {{ access_log {w}/nginx/access.log; default_type application/octet-stream;
  client_body_temp_path {w}/nginx; proxy_temp_path {w}/nginx; fastcgi_temp_path {w}/nginx; uwsgi_temp_path {w}/nginx; scgi_temp_path {w}/nginx;
  server {{ listen 127.0.0.1:{self.https} ssl; ssl_certificate {w}/pki/server.crt; ssl_certificate_key {w}/pki/server.key;
           ssl_client_certificate {w}/pki/ca.crt; ssl_verify_client on; root {w}/www; }}
  server {{ listen 127.0.0.1:{self.http}; root {w}/www; }}
}}
""")
        self.spawn(["nginx", "-c", f"{w}/nginx.conf", "-p", f"{w}/nginx", "-e", f"{w}/nginx/error.log"])
        self.spawn([sys.executable, f"{FIXTURES}/harness/fleetlock-server.py", "--port", str(self.lockport), "--slots", str(self.args.slots),
                    "--cert", f"{w}/pki/server.crt", "--key", f"{w}/pki/server.key"])
        # The status reports' collector: parses every request with the official OTLP definitions.
        out = open(f"{w}/otlp.out", "w")
        self.spawn([f"{ROOT}/.build/pytools/bin/python", f"{FIXTURES}/harness/otlp-receiver.py", "--out", f"{w}/otlp.jsonl", "--quiet"], stdout=out)
        for _ in range(200):
            ports = dict(l.split() for l in open(f"{w}/otlp.out").read().splitlines() if len(l.split()) == 2)
            if "CONTROL" in ports:
                break
            time.sleep(0.05)
        self.otlp, self.otlp_control = int(ports["LISTENING"]), int(ports["CONTROL"])
        sh(f"ostree init --repo={w}/www/repo --mode=archive")
        self.commit1 = self.compose("rootfs1", "2026.12.1")
        for _ in range(100):
            if subprocess.run(f"curl -sf -o /dev/null http://127.0.0.1:{self.http}/repo/config", shell=True).returncode == 0:
                break
            time.sleep(0.05)
        # One template host: deployed from the remote, with a layered package; copied per host.
        t = f"{w}/template"
        os.makedirs(t)
        sh(f"mount -t tmpfs -o size=256M tmpfs {t}")
        sh(f"{self.cli} init --sysroot {t} --os debian")
        sh(f"ostree --repo={t}/ostree/repo remote add --no-gpg-verify acme http://127.0.0.1:{self.http}/repo")
        sh(f"{self.cli} rebase -q --sysroot {t} acme:acme/stable")
        sh(f"{self.cli} install -q --sysroot {t} fixture-app")
        for i in range(self.args.hosts):
            self.hosts.append(self.make_host(i, t))

    def compose(self, rootfs, version):
        out = sh(f"{self.cli} compose rootfs -q --repo {self.work}/www/repo --ref acme/stable --version {version} --stub-kernel {self.work}/{rootfs}")
        return sh(f"ostree --repo={self.work}/www/repo rev-parse acme/stable").strip()

    def make_host(self, i, template):
        w = self.work
        d = f"{w}/hosts/h{i:02d}"
        os.makedirs(f"{d}/sysroot")
        sh(f"mount -t tmpfs -o size=256M tmpfs {d}/sysroot && cp -a {template}/. {d}/sysroot/")
        mid = "%032x" % random.getrandbits(128)
        open(f"{d}/machine-id", "w").write(mid + "\n")
        sh(f"cd {d} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=host-{i:02d} -keyout client.key -out client.csr 2>/dev/null"
           f" && printf 'extendedKeyUsage=clientAuth\\n' > ext && openssl x509 -req -in client.csr -CA {w}/pki/ca.crt -CAkey {w}/pki/ca.key"
           f" -CAcreateserial -days 2 -extfile ext -out client.crt 2>/dev/null && rm client.csr ext")
        api, metrics = free_port(), free_port()
        open(f"{d}/agent.yaml", "w").write(f"""listen: "127.0.0.1:{api}"
metrics-listen: "127.0.0.1:{metrics}"
tls: {{ certificate: {w}/pki/server.crt, key: {w}/pki/server.key, client-ca: {w}/pki/ca.crt }}
roles: {{ reader: reader, operator: operator }}
sysroot: /
os: debian
state-directory: /var/lib/apt-layer
socket: ""
trim-memory: true
fleet:
  name: {FLEET}
  stream: {STREAM}
  policy-url: https://127.0.0.1:{self.https}/policy.yaml
  signers: {w}/keys/allowed_signers
  ca: {w}/pki/ca.crt
  certificate: {d}/client.crt
  key: {d}/client.key
  poll-interval: 2s
  poll-jitter: 1s
  reboot-command: [/run/harness/reboot]
  machine-id-file: {d}/machine-id
  boot-id-file: /run/harness/boot
""")
        # Each boot runs a supervisor (as systemd's Restart=always would): a killed agent restarts
        # in the same boot; the host loop starts the next boot after a reboot.
        open(f"{d}/run.sh", "w").write(f"""#!/bin/sh
fb=
while [ ! -e {d}/stop ]; do
  {FIXTURES}/harness/boot-container.sh $fb -b {w} -B {d} -b {self.bin} -e APT_LAYER_TEST_FAULT={FAULTS} -e APT_LAYER_TEST_FAULT_ONCE={d}/faults \\
    {d}/sysroot {d}/state -- /bin/sh -c \\
    'while [ ! -e {d}/stop ]; do {self.bin}/apt-layerd --config {d}/agent.yaml >> {d}/agent.log 2>&1; sleep 0.3; done' \\
    >> {d}/boots.log 2>&1
  fb=
  case "$({FIXTURES}/harness/boot-container.sh last {d}/state)" in
  *reboot*) [ -e {d}/fallback-armed ] && rm {d}/fallback-armed && fb=--fallback ;;  # a bootloader falling back, once
  *) sleep 0.5 ;;
  esac
done
""")
        os.chmod(f"{d}/run.sh", 0o755)
        os.makedirs(f"{d}/faults")
        return {"i": i, "dir": d, "mid": mid, "hid": host_id(mid), "api": api, "metrics": metrics}

    def spawn(self, argv, stdout=subprocess.DEVNULL, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    # ---------- talking to hosts ----------
    def ssl(self):
        ctx = ssl.create_default_context(cafile=f"{self.work}/pki/ca.crt")
        ctx.load_cert_chain(f"{self.work}/pki/reader.crt", f"{self.work}/pki/reader.key")
        return ctx

    def get(self, host, path):
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{host['api']}{path}", context=self.ctx, timeout=5) as r:
                return json.load(r)
        except Exception:
            return None

    def lock_state(self):
        ctx = ssl.create_default_context(cafile=f"{self.work}/pki/ca.crt")
        with urllib.request.urlopen(f"https://127.0.0.1:{self.lockport}/debug/state", context=ctx, timeout=5) as r:
            return json.load(r)

    def publish(self, text, signer="alice"):
        w = self.work
        open(f"{w}/keys/policy.yaml", "w").write(text)
        sh(f"rm -f {w}/keys/policy.yaml.sig && ssh-keygen -q -Y sign -f {w}/keys/{signer} -n apt-layer-policy {w}/keys/policy.yaml")
        self.mtime = getattr(self, "mtime", 1700000000) + 1
        for f in ["policy.yaml.sig", "policy.yaml"]:
            shutil.copy(f"{w}/keys/{f}", f"{w}/www/{f}.new")
            os.utime(f"{w}/www/{f}.new", (self.mtime, self.mtime))
            os.rename(f"{w}/www/{f}.new", f"{w}/www/{f}")

    def policy(self, version, release, commit, published, waves, open_through, windows="", health="", fleet=FLEET, expires="2099-01-01T00:00:00Z",
               hooks="", replace=""):
        wl = "\n".join(f"        - {{name: {n}, until: {u}, start-after: {a}s, ramp: {r}s}}" for n, u, a, r in waves)
        return f"""apiVersion: apt-layer/v1
kind: FleetPolicy
fleet: {fleet}
version: {version}
expires: {expires}
remote: {{name: acme, url: "http://127.0.0.1:{self.http}/repo"}}
streams:
  {STREAM}:
    ref: acme/stable
    salt: stream
    release:
      id: "{release}"
      commit: {commit}
      published: {utc(published)}
      open-through-wave: {open_through}
{replace}      waves:
{wl}
{windows}
reboot: {{fleetlock: "https://127.0.0.1:{self.lockport}", group: default{hooks}}}
telemetry: {{countme: false, report: "http://127.0.0.1:{self.otlp}/v1/logs", heartbeat: 1h}}
{health}
"""

    def wait(self, what, predicate, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.5)
        return False

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok), detail))
        print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""), flush=True)

    def sample_memory(self):
        while not self.stop_sampling:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if not open(f"/proc/{pid}/cmdline", "rb").read().startswith(f"{self.bin}/apt-layerd".encode()):
                        continue
                    rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))
                    self.rss[pid] = max(self.rss.get(pid, 0), rss)
                except Exception:
                    pass
            time.sleep(1)

    def agent_pids(self, host):
        pids = []
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and f"{host['dir']}/agent.yaml".encode() in open(f"/proc/{pid}/cmdline", "rb").read() and \
                        open(f"/proc/{pid}/cmdline", "rb").read().startswith(f"{self.bin}/apt-layerd".encode()):
                    pids.append(int(pid))
            except Exception:
                pass
        return pids

    def boots(self, host):
        state = f"{host['dir']}/state"
        return len([n for n in os.listdir(state) if n.startswith("run-")]) if os.path.isdir(state) else 0

    # ---------- the run ----------
    def run(self):
        t0 = time.time()
        self.setup()
        self.ctx = self.ssl()
        n = len(self.hosts)
        self.measure["setup_s"] = time.time() - t0
        # Release 1 is what the hosts run: the first policy pins it.
        self.publish(self.policy(1, "2026.12.1", self.commit1, time.time() - 3600, [("all", 10000, 0, 0)], 0))
        for h in self.hosts:
            h["proc"] = self.spawn(["/bin/sh", f"{h['dir']}/run.sh"])
        threading.Thread(target=self.sample_memory, daemon=True).start()
        up = self.wait("agents up", lambda: all((self.get(h, "/v1/policy") or {}).get("driver", {}).get("state") == "up-to-date" for h in self.hosts), 180)
        self.check(f"{n} agents booted in the harness accept policy 1 and are up to date", up,
                   "" if up else str([(h["i"], (self.get(h, "/v1/policy") or {}).get("driver")) for h in self.hosts][:3]))
        if not up:
            return

        # Release 2, composed now. Waves from the hosts' own buckets: 3 canaries, then early, then broad.
        sh(f"{FIXTURES}/builders/make-rootfs.sh {self.work}/rootfs2 {self.work}/fx/debs {self.work}/fx/repo r2")
        self.commit2 = self.compose("rootfs2", "2026.12.2")
        for h in self.hosts:
            h["bucket"] = bucket(FLEET, STREAM, h["hid"])
        order = sorted(self.hosts, key=lambda h: h["bucket"])
        canary_until = order[min(2, n - 1)]["bucket"] + 1
        early_until = max(canary_until + 1, order[min(n // 2, n - 1)]["bucket"] + 1)
        waves = [("canary", canary_until, 0, 0), ("early", early_until, 20, 0), ("broad", 10000, 35, 15)]
        failing = order[0]
        # The last host's bootloader falls back to the previous entry on its next reboot.
        fallback = order[-1]
        open(f"{fallback['dir']}/fallback-armed", "w").close()
        os.makedirs(f"{failing['dir']}/sysroot/ostree/deploy/debian/var/lib", exist_ok=True)
        open(f"{failing['dir']}/sysroot/ostree/deploy/debian/var/lib/sim-unhealthy", "w").write("broken\n")
        now = time.time()
        window_start = (int(now + 8) // 60 + 1) * 60 if (int(now + 8) % 60) else int(now + 8)
        windows = f"""windows:
  - {{days: [Mon, Tue, Wed, Thu, Fri, Sat, Sun], start: "{time.strftime('%H:%M', time.gmtime(window_start))}", length: 30m, tz: UTC}}"""
        health = """health:
  timeout: 20s
  settle: 3s
  checks:
    - {command: [/bin/sh, -c, "test ! -e /var/lib/sim-unhealthy"], timeout: 5s}"""
        # Reboot hooks (issue 25): every host drains before its reboot into the release and rejoins
        # after its health checks; one canary's first drain fails, which must postpone its reboot.
        drain_fails = order[1] if n > 2 else None
        var = lambda h: f"{h['dir']}/sysroot/ostree/deploy/debian/var/lib"
        if drain_fails:
            os.makedirs(var(drain_fails), exist_ok=True)
            open(f"{var(drain_fails)}/sim-drain-fails", "w").close()
        hooks = (', pre-reboot: [{command: [/bin/sh, -c, "if [ -e /var/lib/sim-drain-fails ]; then rm /var/lib/sim-drain-fails; '
                 'echo workloads did not drain >&2; exit 1; fi; echo drained >> /var/lib/sim-drained"], timeout: 20s}], '
                 'post-boot: [{command: [/bin/sh, -c, "echo rejoined >> /var/lib/sim-rejoined"]}], hook-retry: 3s')
        postponed = []

        def watch_postponement():
            while drain_fails and not self.stop_sampling and not postponed:
                reason = (self.get(drain_fails, "/v1/policy") or {}).get("driver", {}).get("reason", "")
                if "pre-reboot hook failed" in reason:
                    postponed.append(reason)
                time.sleep(0.2)

        threading.Thread(target=watch_postponement, daemon=True).start()
        # A fleet-wide hotfix (issue 25): the release replaces the base's fixture-base 1.0 with a 2.0
        # .deb served beside the repository, pinned by sha256.
        hotfix = f"{self.work}/hotfix/fixture-base"
        sh(f"mkdir -p {hotfix}/DEBIAN {hotfix}/usr/share/fixture-base && echo 2.0 > {hotfix}/usr/share/fixture-base/VERSION && "
           f"printf 'Package: fixture-base\\nVersion: 2.0\\nArchitecture: all\\nMaintainer: t <t@localhost>\\nDescription: hotfix\\n' "
           f"> {hotfix}/DEBIAN/control && dpkg-deb --root-owner-group --build {hotfix} {self.work}/www/fixture-base_2.0_all.deb >/dev/null")
        digest = hashlib.sha256(open(f"{self.work}/www/fixture-base_2.0_all.deb", "rb").read()).hexdigest()
        replace = f'      replace: [{{url: "http://127.0.0.1:{self.http}/fixture-base_2.0_all.deb", sha256: {digest}}}]\n'
        published = int(time.time())
        for h in self.hosts:
            h["wave_index"], h["wave"], h["start"] = wave_of(h["bucket"], waves, published)
        self.publish(self.policy(2, "2026.12.2", self.commit2, published, waves, 2, windows, health, hooks=hooks, replace=replace))
        t_publish = time.time()

        # kill -9 agents in the states they pass through (each state once, on some host).
        killed = {}

        def killer():
            states = {"staged", "waiting", "finalizing", "verifying", "rebooting", "staging", "healthy"}
            while not self.stop_sampling and states - set(killed):
                for h in self.hosts:
                    st = (self.get(h, "/v1/policy") or {}).get("driver", {}).get("state")
                    if st in states and st not in killed and h is not failing and h is not fallback:
                        for pid in self.agent_pids(h):
                            try:
                                os.kill(pid, signal.SIGKILL)
                            except ProcessLookupError:
                                pass  # it exited between the listing and the kill
                        killed[st] = h["i"]
                time.sleep(0.3)

        threading.Thread(target=killer, daemon=True).start()

        def settled():
            # Healthy hosts end up-to-date on release 2 (healthy, then the next poll finds nothing
            # to do); the failing canary ends with release 2 denylisted and waits for that reason.
            for h in self.hosts:
                s = self.get(h, "/v1/policy") or {}
                st = s.get("driver", {}).get("state")
                waiting = (s.get("rollout") or {}).get("waitingFor")
                if h is failing or h is fallback:
                    if st not in ("failed", "up-to-date") or waiting != "denylisted":
                        return False
                elif st not in ("healthy", "up-to-date") or waiting != "up-to-date":
                    return False
            return True

        done = self.wait("rollout", settled, self.args.timeout)
        self.measure["publish_to_fleet_s"] = time.time() - t_publish
        self.check("rollout settled: every host on 2026.12.2 and healthy but the failing canary (rolled back, denylisted)", done,
                   "" if done else str([(h["i"], (self.get(h, "/v1/policy") or {}).get("driver", {}).get("state")) for h in self.hosts]))

        # Where each host landed, and when it finalized.
        wave_ok, start_ok, window_ok, first = True, True, True, {}
        for h in self.hosts:
            s = self.get(h, "/v1/policy") or {}
            r = s.get("rollout") or {}
            if r.get("wave") != h["wave"] or r.get("bucket") != h["bucket"]:
                wave_ok = False
            txns = (self.get(h, "/v1/transactions?limit=100") or {}).get("transactions", [])
            # Only finalizes that ran: one queued when its agent was killed is journalled as
            # interrupted and never got a startedAt (the field is optional in the API).
            fin = [t for t in txns if t.get("operation") == "finalize" and t.get("requester") == f"fleet:{FLEET}" and t.get("startedAt")]
            for t in fin:
                at = datetime.datetime.fromisoformat(t["startedAt"].replace("Z", "+00:00")).timestamp()
                if at + 1 < h["start"]:  # startedAt has whole seconds
                    start_ok = False
                if at + 1 < window_start:
                    window_ok = False
                first[h["wave"]] = min(first.get(h["wave"], 1e18), at)
            h["finalizes"] = len(fin)
            status = self.get(h, "/v1/status") or {}
            booted = [d for d in status.get("deployments", []) if d.get("booted")]
            h["booted"] = booted[0].get("baseChecksum") if booted else None
            h["default"] = (status.get("deployments") or [{}])[0].get("baseChecksum")
            h["layered"] = booted[0].get("requestedPackages") if booted else None
            h["replaced"] = booted[0].get("replacedBasePackages") if booted else None
        self.check("each host is in the wave the pinned algorithm predicts (independent Python)", wave_ok)
        self.check("no host finalized before its wave start", start_ok,
                   ", ".join(f"{w}: first {first[w] - published:.0f}s after publish" for w in sorted(first)))
        self.check("no finalization before the window opened", window_ok, f"window opened {window_start - published:.0f}s after publish")
        healthy = [h for h in self.hosts if h is not failing and h is not fallback]
        self.check("healthy hosts booted release 2 with their layered package re-applied",
                   all(h["booted"] == self.commit2 and h["layered"] == ["fixture-app"] for h in healthy),
                   str([(h["i"], (h["booted"] or "")[:8], h["layered"]) for h in healthy if h["booted"] != self.commit2][:4]))
        self.check("the failing canary rolled back to release 1 and denylisted release 2",
                   failing["booted"] == self.commit1 and any(d.get("commit") == self.commit2 for d in (self.get(failing, "/v1/policy") or {}).get("denylist", [])),
                   f"booted {(failing['booted'] or '')[:12]}")
        fb_status = self.get(fallback, "/v1/policy") or {}
        self.check("a host whose bootloader fell back is seen as unhealthy: release 2 denylisted, release 1 booted and the default again",
                   fallback["booted"] == self.commit1 and fallback["default"] == self.commit1
                   and any(d.get("commit") == self.commit2 and "fell back" in d.get("reason", "") + (fb_status.get("driver") or {}).get("reason", "")
                           for d in fb_status.get("denylist", [])) and self.boots(fallback) == 2,
                   f"booted {(fallback['booted'] or '')[:12]}, default {(fallback['default'] or '')[:12]}, boots {self.boots(fallback)}, "
                   f"{fb_status.get('denylist')}")
        boots = {h["i"]: self.boots(h) for h in self.hosts if h is not fallback}
        self.check("one reboot per healthy host, two for the failing canary (no second reboot of a release)",
                   all(boots[h["i"]] == 2 for h in healthy) and boots[failing["i"]] == 3, str(boots))
        self.results_hosts = {"failing": failing["i"], "fallback": fallback["i"]}
        hotfixed = [{"name": "fixture-base", "baseVersion": "1.0", "version": "2.0"}]
        self.check("the release's pinned replacement (a fleet-wide hotfix) is in every healthy host's booted deployment",
                   all(h["replaced"] == hotfixed for h in healthy), str([(h["i"], h["replaced"]) for h in healthy if h["replaced"] != hotfixed][:4]))
        drained = {h["i"]: os.path.exists(f"{var(h)}/sim-drained") for h in self.hosts}
        rejoined = {h["i"]: os.path.exists(f"{var(h)}/sim-rejoined") for h in healthy}
        self.check("every host drained (pre-reboot hook) before its reboot into the release; the healthy ones rejoined (post-boot hook)",
                   all(drained.values()) and all(rejoined.values()),
                   f"not drained {[i for i, d in drained.items() if not d]}, not rejoined {[i for i, r in rejoined.items() if not r]}")
        if drain_fails:
            self.check("a failing drain postponed the reboot (reason shown, slot given back), the retry drained, one reboot",
                       bool(postponed) and not os.path.exists(f"{var(drain_fails)}/sim-drain-fails") and drained[drain_fails["i"]]
                       and boots[drain_fails["i"]] == 2,
                       (postponed[0][:160] if postponed else "no postponement seen") + f"; boots {boots[drain_fails['i']]}")
        lock = self.lock_state()
        self.check(f"at most {self.args.slots} concurrent reboot slots", lock["maxConcurrent"] <= self.args.slots and lock["maxConcurrent"] >= 1,
                   f"max {lock['maxConcurrent']}, grants {lock['grants']}, refusals {lock['refusals']}")
        self.check("no slot leaked and no protocol violation", not lock["holders"] and lock["violations"] == 0, str(lock["holders"]))
        fired = set()
        for h in self.hosts:
            fired |= {f[len("driver-"):] for f in os.listdir(f"{h['dir']}/faults")}
        self.check("agents killed with SIGKILL right after journaling every driver state resumed",
                   fired == set(DRIVER_STATES), "missing: %s; external kill -9 in: %s" % (sorted(set(DRIVER_STATES) - fired), sorted(killed)))

        # Every host's status stream arrived whole through the kill -9s and reboots, and its newest
        # report says where it ended.
        def records():
            by = {}
            for line in open(f"{self.work}/otlp.jsonl").read().splitlines():
                r = json.loads(line)
                by.setdefault(r["resource"].get("host.id"), []).append(r)
            return by

        def reports_final():
            by = records()
            for h in self.hosts:
                rs = by.get(h["hid"])
                if not rs:
                    return False
                last = max(rs, key=lambda r: r["attributes"]["apt_layer.report.seq"])
                if last["body"].get("update", {}).get("state") != (self.get(h, "/v1/policy") or {}).get("driver", {}).get("state"):
                    return False
            return True

        arrived = self.wait("final reports", reports_final, 90)
        by = records()
        gaps, wrong = [], []
        for h in self.hosts:
            seqs = {r["attributes"]["apt_layer.report.seq"] for r in by.get(h["hid"], [])}
            if not seqs or seqs != set(range(1, max(seqs) + 1)):
                gaps.append(h["i"])
            if not seqs:
                continue
            last = max(by[h["hid"]], key=lambda r: r["attributes"]["apt_layer.report.seq"])["body"]
            booted = [d.get("release") for d in last.get("deployments", []) if d.get("role") == "booted"]
            want = "2026.12.1" if h in (failing, fallback) else "2026.12.2"
            health = last.get("health", {}).get("result")
            if booted != [want] or (h in (failing, fallback) and not any(d.get("release") == "2026.12.2" for d in last.get("denylist", []))):
                wrong.append((h["i"], booted, health))
        otlp = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{self.otlp_control}/debug/state", timeout=5).read())
        self.measure["reports"] = otlp["records"]
        self.check("every host's status reports arrived, sequence 1..n without a gap, parsed as OTLP; the newest shows its final state and booted release",
                   arrived and not gaps and not wrong and otlp["protocol_errors"] == 0,
                   f"{otlp['records']} records; gaps on hosts {gaps}; wrong {wrong[:3]}; protocol errors {otlp['protocol_errors']}; requests cut off by a killed agent {otlp.get('aborted')}")

        # The canary never retries: still failed, still on release 1, a few polls later.
        time.sleep(6)
        s = self.get(failing, "/v1/policy") or {}
        self.check("the denylisted release is not retried", (s.get("rollout") or {}).get("waitingFor") == "denylisted" and self.boots(failing) == 3,
                   f"waiting for: {(s.get('rollout') or {}).get('waitingFor')}")

        # Refused policies leave version 2 in force everywhere.
        bad = [("bad signature", self.policy(3, "x", self.commit1, published, waves, 2), "mallory", "below-threshold"),
               ("replayed older version", self.policy(1, "2026.12.1", self.commit1, time.time() - 3600, [("all", 10000, 0, 0)], 0), "alice", "not-newer"),
               ("another fleet", self.policy(3, "x", self.commit1, published, waves, 2, fleet="acme-lab"), "alice", "wrong-fleet"),
               ("expired", self.policy(3, "x", self.commit1, published, waves, 2, expires="2020-01-01T00:00:00Z"), "alice", "expired")]
        for label, text, signer, kind in bad:
            self.publish(text, signer)
            ok = self.wait(label, lambda: all(((self.get(h, "/v1/policy") or {}).get("rejections") or [{}])[0].get("kind") == kind for h in self.hosts), 30)
            in_force = all(((self.get(h, "/v1/policy") or {}).get("policy") or {}).get("version") == 2 for h in self.hosts)
            self.check(f"policy with {label} refused by every host ({kind}); version 2 stays", ok and in_force)
        self.stop_sampling = True
        per_agent = sorted(self.rss.values())
        self.measure["agent_rss_max_mb"] = (per_agent[-1] / 1024) if per_agent else 0
        self.measure["agent_rss_median_mb"] = (per_agent[len(per_agent) // 2] / 1024) if per_agent else 0
        self.measure["hosts"] = n
        self.measure["slots"] = self.args.slots
        self.measure["max_concurrent"] = lock["maxConcurrent"]
        self.measure["waves"] = {w: sum(1 for h in self.hosts if h["wave"] == w) for w, *_ in waves}

    def cleanup(self):
        self.stop_sampling = True
        for h in self.hosts:
            open(f"{h['dir']}/stop", "w").close()
        for h in self.hosts:
            for pid in self.agent_pids(h):
                try:
                    os.kill(pid, signal.SIGTERM)
                except Exception:
                    pass
        time.sleep(1)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except Exception:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except Exception:
                pass
        if self.args.keep:
            print(f"kept {self.work} (mounted; umount -l its mounts when done)")
            return
        subprocess.run(f"grep -o '{self.work}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l", shell=True)
        if True:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--slots", type=int, default=SLOTS)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.environ["OSTREE_SYSROOT_DEBUG"] = "mutable-deployments"
    sim = Sim(args)
    try:
        sim.run()
    except Exception as e:
        sim.check("simulation ran", False, repr(e))
    finally:
        sim.cleanup()
    failed = [r for r in sim.results if not r[1]]
    m = sim.measure
    print()
    print("| fleet simulation | value |")
    print("|---|---|")
    print(f"| hosts (agents in booted containers) | {m.get('hosts', '?')} |")
    print(f"| hosts per wave | {', '.join(f'{k} {v}' for k, v in m.get('waves', {}).items())} |")
    print(f"| reboot slots allowed / max concurrent | {m.get('slots', '?')} / {m.get('max_concurrent', '?')} |")
    print(f"| publish → whole fleet on the release (waves squeezed to seconds) | {m.get('publish_to_fleet_s', 0):.0f} s |")
    print(f"| agent memory, median / max RSS | {m.get('agent_rss_median_mb', 0):.1f} / {m.get('agent_rss_max_mb', 0):.1f} MB |")
    print(f"| checks passed | {len(sim.results) - len(failed)} of {len(sim.results)} |")
    if args.json:
        json.dump({"measure": m, "results": sim.results}, open(args.json, "w"), indent=2)
    sys.exit(1 if (args.check and (failed or not sim.results)) else 0)


if __name__ == "__main__":
    main()
