#!/usr/bin/env python3
"""Telemetry benchmark (not a test): N agents (default 20) report to one OTLP receiver
(Tests/Fixtures/harness/otlp-receiver.py, which parses every request with the official protobuf
definitions). Prints a table:

  * drain rate after a 10-minute outage, simulated in seconds: each agent's outbox is filled with
    600 copies of its own real report (one report a second for ten minutes, a chatty host) while
    the collector is down, then the collector comes back; reports/s until every outbox is empty;
  * the same from a full outbox (max-outbox-reports, 10000 per agent);
  * agent memory (RSS, anonymous RSS) with an empty and with a full outbox, collector down;
  * bytes per report on the wire (request bodies / records received);
  * `apt-layer fleet status` wall time over the N agents, against a sequential curl loop over
    the same agents' GET /v1/policy (what a shell script would do).

  bench/telemetry.py [--agents N] [--bin .build/debug]      (root: tmpfs mounts)
"""
import argparse, json, os, random, re, socket, sqlite3, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = f"{ROOT}/Tests/Fixtures"
PY = f"{ROOT}/.build/pytools/bin/python"


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True).stdout


USED = set()


def free_port():
    while True:
        port = random.randint(20000, 31999)
        if port in USED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        USED.add(port)
        return port


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def metric(port, name):
    for line in get(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def rss(pid):
    status = open(f"/proc/{pid}/status").read()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) // 1024 for k in ("VmRSS", "RssAnon"))


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.work = tempfile.mkdtemp(prefix="apt-layer-telemetry.")
        self.procs = []
        self.agents = []

    def spawn(self, argv, out=subprocess.DEVNULL):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def setup(self):
        w = self.work
        sh(f"mount -t tmpfs -o size=2G tmpfs {w}")
        sh(f"{FIX}/make-debs.sh {w}/fx >/dev/null")
        sh(f"{FIX}/make-rootfs.sh {w}/rootfs {w}/fx/debs {w}/fx/repo 1")
        sh(f"{ROOT}/scripts/make-test-pki.sh {w}/pki >/dev/null")
        # One sysroot all agents read (nothing here changes it: no transactions run).
        sh(f"{self.bin}/apt-layer init --sysroot {w}/sysroot --os debian")
        sh(f"{self.bin}/apt-layer compose rootfs -q --sysroot {w}/sysroot --ref bench/base --version 1 --stub-kernel {w}/rootfs")
        sh(f"{self.bin}/apt-layer rebase -q --sysroot {w}/sysroot bench/base")
        out = open(f"{w}/receiver.out", "w")
        self.receiver = self.spawn([PY, f"{FIX}/otlp-receiver.py", "--mode", "down", "--quiet"], out=out)
        for _ in range(200):
            text = open(f"{w}/receiver.out").read()
            ports = dict(l.split() for l in text.splitlines() if len(l.split()) == 2)
            if "CONTROL" in ports:
                break
            time.sleep(0.05)
        self.rport, self.cport = int(ports["LISTENING"]), int(ports["CONTROL"])
        for i in range(self.args.agents):
            d = f"{w}/agents/a{i:02d}"
            os.makedirs(d)
            open(f"{d}/machine-id", "w").write("%032x\n" % random.getrandbits(128))
            api, met = free_port(), free_port()
            open(f"{d}/agent.yaml", "w").write(f"""listen: "127.0.0.1:{api}"
metrics-listen: "127.0.0.1:{met}"
tls: {{ certificate: {w}/pki/server.crt, key: {w}/pki/server.key, client-ca: {w}/pki/ca.crt }}
roles: {{ reader: reader }}
sysroot: {w}/sysroot
os: debian
state-directory: {d}/state
journal: {d}/journal.sqlite
socket: ""
telemetry: {{countme: false, report-url: "http://127.0.0.1:{self.rport}/v1/logs", heartbeat: 1h, machine-id-file: {d}/machine-id,
  batch-size: 100, max-outbox-reports: {self.args.full}, max-backoff: 2s}}
""")
            self.agents.append({"dir": d, "api": api, "metrics": met, "proc": None})

    def start(self, a):
        a["proc"] = self.spawn([f"{self.bin}/apt-layerd", "--config", f"{a['dir']}/agent.yaml"], out=open(f"{a['dir']}/agent.log", "a"))
        for _ in range(300):
            try:
                get(f"http://127.0.0.1:{a['metrics']}/v1/healthz")
                return
            except Exception:
                time.sleep(0.05)
        raise SystemExit(f"agent {a['dir']} did not start")

    def stop(self, a):
        a["proc"].terminate()
        a["proc"].wait()

    def mode(self, mode):
        req = urllib.request.Request(f"http://127.0.0.1:{self.cport}/debug/mode", data=json.dumps({"mode": mode}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def state(self):
        return json.loads(get(f"http://127.0.0.1:{self.cport}/debug/state"))

    def fill(self, count):
        """Stops every agent, fills its outbox to `count` copies of its newest report, restarts it."""
        for a in self.agents:
            self.stop(a)
        for a in self.agents:
            db = sqlite3.connect(f"{a['dir']}/journal.sqlite")
            if "report" not in a:
                a["report"] = db.execute("SELECT createdAt, body FROM telemetry_outbox ORDER BY seq DESC LIMIT 1").fetchone()
            have = db.execute("SELECT COUNT(*) FROM telemetry_outbox").fetchone()[0]
            db.executemany("INSERT INTO telemetry_outbox (createdAt, body) VALUES (?, ?)", [a["report"]] * max(0, count - have))
            db.commit()
            db.close()
        for a in self.agents:
            self.start(a)

    def outbox(self):
        return sum(metric(a["metrics"], "apt_layer_telemetry_outbox_reports") for a in self.agents)

    def drain(self):
        before = self.state()["records"]
        waiting = self.outbox()
        t0 = time.monotonic()
        self.mode("up")
        while self.outbox() > 0:
            time.sleep(0.2)
            if time.monotonic() - t0 > 900:
                raise SystemExit("outboxes did not drain in 15 minutes")
        elapsed = time.monotonic() - t0
        got = self.state()["records"] - before
        return waiting, got, elapsed

    def run(self):
        n = len(self.agents)
        rows = []
        for a in self.agents:
            self.start(a)
        time.sleep(3)
        idle = [rss(a["proc"].pid) for a in self.agents]
        # A 10-minute outage at one report a second per host.
        self.fill(600)
        time.sleep(2)
        waiting, got, elapsed = self.drain()
        st = self.state()
        rows.append(("drain after a 10-min outage (600 reports/agent)", f"{int(waiting)} reports in {elapsed:.1f} s = {got / elapsed:.0f} reports/s"))
        rows.append(("bytes per report (request body / records)", f"{st['bytes'] / max(1, st['records']):.0f} B"))
        # A full outbox, collector down.
        self.mode("down")
        self.fill(self.args.full)
        time.sleep(5)
        full = [rss(a["proc"].pid) for a in self.agents]
        full_count = self.outbox()
        waiting, got, elapsed = self.drain()
        rows.append((f"drain from a full outbox ({self.args.full}/agent)", f"{int(waiting)} reports in {elapsed:.1f} s = {got / elapsed:.0f} reports/s"))
        med = lambda xs, k: statistics.median(x[k] for x in xs)
        rows.append(("agent RSS / anon, empty outbox (median)", f"{med(idle, 0):.0f} / {med(idle, 1):.0f} MB"))
        rows.append((f"agent RSS / anon, full outbox, collector down ({int(full_count / n)}/agent, median)",
                     f"{med(full, 0):.0f} / {med(full, 1):.0f} MB"))
        # fleet status over the N agents against a sequential curl loop.
        inv = f"{self.work}/inventory"
        open(inv, "w").write("".join(f"https://127.0.0.1:{a['api']}\n" for a in self.agents))
        tls = f"--cert {self.work}/pki/reader.crt --key {self.work}/pki/reader.key --ca {self.work}/pki/ca.crt"
        times, loop = [], []
        for _ in range(5):
            t0 = time.monotonic()
            out = sh(f"{self.bin}/apt-layer fleet status --inventory {inv} {tls} --json")
            times.append(time.monotonic() - t0)
            assert len(json.loads(out)["hosts"]) == n
            t0 = time.monotonic()
            for a in self.agents:
                sh(f"curl -sf --cacert {self.work}/pki/ca.crt --cert {self.work}/pki/reader.crt --key {self.work}/pki/reader.key "
                   f"https://127.0.0.1:{a['api']}/v1/policy -o /dev/null")
            loop.append(time.monotonic() - t0)
        rows.append((f"apt-layer fleet status over {n} agents (median of 5)", f"{statistics.median(times):.2f} s"))
        rows.append((f"sequential curl GET /v1/policy over {n} agents (median of 5)", f"{statistics.median(loop):.2f} s"))
        lost = st["protocol_errors"]
        print(f"\n{n} agents, one receiver; protocol errors at the receiver: {lost}\n")
        width = max(len(r[0]) for r in rows)
        print(f"| {'measure'.ljust(width)} | result |")
        print(f"|{'-' * (width + 2)}|--------|")
        for k, v in rows:
            print(f"| {k.ljust(width)} | {v} |")

    def cleanup(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, 9)
            except Exception:
                pass
            p.wait()
        subprocess.run(f"umount -l {self.work}", shell=True)
        subprocess.run(f"rm -rf {self.work}", shell=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--full", type=int, default=10000, help="max-outbox-reports")
    ap.add_argument("--bin", default=f"{ROOT}/.build/debug")
    b = Bench(ap.parse_args())
    try:
        b.setup()
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
