"""The VM tier's fleet mission (issue 19): apt-layerd under its packaged unit rolls the VM to a
release the way a fleet does, from the host's side of qemu's user network (the guest reaches the
host's loopback as 10.0.2.2):

  - releases are commits in an archive repository served over HTTP (nginx): release 2 is the VM's
    base plus a marker file, release 3 the same plus a file that makes its health check fail;
  - the policy is signed with ssh-keygen -Y and served over HTTPS with client certificates (nginx);
  - a protocol-exact FleetLock server (Tests/Fixtures/harness/fleetlock-server.py) holds one slot;
  - the OTLP receiver (Tests/Fixtures/harness/otlp-receiver.py) takes the status reports; countme goes to
    the policy server.

The driver must configure the policy's remote from inside the unit's sandbox, stage release 2 with
the operator's layered packages (and whatever else was pending) re-applied, take the slot, reboot
by `systemctl reboot`, pass the health checks, give the slot back and report; then stage release
3, reboot into it, fail its health check, roll back, reboot, and denylist it; release 4 panics and
the bootloader falls back. Release 5 goes the offline way (issue 23): composed as an OCI image
(`apt-layer compose oci` from the archive repository), pushed to a TLS docker-registry on the
host's loopback, pinned by digest in a signed policy packed with it by `apt-layer bundle create`
onto an ext4 "USB stick"; the registry stops, the stick is plugged into the VM's USB controller
(QMP) and mounted on the agent's `fleet.bundles` directory, the agent (reconfigured with no policy
URL) stages the image release from the bundle and reboots into it.
"""
import base64, json, os, re, shutil, socket, ssl, subprocess, threading, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(FIXTURES))
GUEST_HOST = "10.0.2.2"


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout


class FleetMission:
    def __init__(self, vm, args, check, free_port):
        self.vm, self.args, self.check, self.free_port = vm, args, check, free_port
        self.w = f"{vm.work}/fleet"
        self.procs = []

    # ---------- the host's side ----------
    def setup(self):
        w, pki = self.w, self.args.pki
        os.makedirs(f"{w}/www", exist_ok=True)
        os.makedirs(f"{w}/nginx", exist_ok=True)
        os.makedirs(f"{w}/keys", exist_ok=True)
        # The policy server's and FleetLock's certificate answers for the address the guest uses.
        for name, ext in [("server", f"subjectAltName=IP:{GUEST_HOST},IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                          ("client", "extendedKeyUsage=clientAuth")]:
            sh(f"cd {w} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=vm-{name} -keyout {name}.key "
               f"-out {name}.csr 2>/dev/null && printf '{ext}\\n' > {name}.ext && openssl x509 -req -in {name}.csr -CA {pki}/ca.crt "
               f"-CAkey {pki}/ca.key -CAcreateserial -days 2 -extfile {name}.ext -out {name}.crt 2>/dev/null && rm {name}.csr {name}.ext")
        sh(f"ssh-keygen -q -t ed25519 -N '' -C ops -f {w}/keys/ops")
        open(f"{w}/keys/allowed_signers", "w").write("ops@acme " + " ".join(open(f"{w}/keys/ops.pub").read().split()[:2]) + "\n")
        # Releases: the VM's base commit plus marker files, in an archive repository.
        repo, ref = f"{w}/www/repo", self.args.ref
        sh(f"ostree init --repo={repo} --mode=archive && ostree --repo={repo} pull-local {self.args.repo} {ref}")
        self.base = sh(f"ostree --repo={repo} rev-parse {ref}").strip()
        keep = "" if subprocess.run(f"ostree --repo={repo} show --print-metadata-key=apt-layer.pkglist {ref} >/dev/null 2>&1",
                                    shell=True).returncode else "--keep-metadata=apt-layer.pkglist"
        self.commits = {}
        for version, bad in [("2026.12.2", False), ("2026.12.3", True)]:
            tree = f"{w}/tree-{version}/usr/share/acme"
            os.makedirs(tree)
            open(f"{tree}/release", "w").write(version + "\n")
            if bad:
                open(f"{tree}/bad", "w").write("this release fails its health check\n")
            sh(f"ostree --repo={repo} commit -b {ref} --tree=ref={self.base} --tree=dir={w}/tree-{version} --bootable {keep} "
               f"--add-metadata-string=version={version} -s 'release {version}' --owner-uid=0 --owner-gid=0")
            self.commits[version] = sh(f"ostree --repo={repo} rev-parse {ref}").strip()
        # Release 4 cannot boot: release 2 with its initramfs replaced by junk (the kernel unpacks
        # nothing, finds no init, cannot mount root=UUID= itself and panics; panic=10 reboots).
        initramfs = sh(f"ostree --repo={repo} ls -R {self.commits['2026.12.2']} /usr/lib/modules | awk '$NF ~ /initramfs.img$/ {{print $NF}}'").split()
        junk = f"{w}/tree-2026.12.4"
        os.makedirs(f"{junk}/{os.path.dirname(initramfs[0])}", exist_ok=True)
        open(f"{junk}/{initramfs[0]}", "wb").write(b"not an initramfs\n" * 64)
        sh(f"ostree --repo={repo} commit -b {ref} --tree=ref={self.commits['2026.12.2']} --tree=dir={junk} --bootable {keep} "
           f"--add-metadata-string=version=2026.12.4 -s 'release 2026.12.4' --owner-uid=0 --owner-gid=0")
        self.commits["2026.12.4"] = sh(f"ostree --repo={repo} rev-parse {ref}").strip()
        # Release 5 (the offline one): release 2 with its own marker.
        tree = f"{w}/tree-2026.12.5/usr/share/acme"
        os.makedirs(tree)
        open(f"{tree}/release", "w").write("2026.12.5\n")
        sh(f"ostree --repo={repo} commit -b {ref} --tree=ref={self.commits['2026.12.2']} --tree=dir={w}/tree-2026.12.5 --bootable {keep} "
           f"--add-metadata-string=version=2026.12.5 -s 'release 2026.12.5' --owner-uid=0 --owner-gid=0")
        self.commits["2026.12.5"] = sh(f"ostree --repo={repo} rev-parse {ref}").strip()
        sh(f"ostree --repo={repo} summary -u")
        self.https, self.http, self.lock = self.free_port(), self.free_port(), self.free_port()
        open(f"{w}/nginx.conf", "w").write(f"""daemon off; user root; worker_processes 1; pid {w}/nginx/pid; error_log {w}/nginx/error.log;
events {{ worker_connections 256; }}
http {{ access_log {w}/nginx/access.log; default_type application/octet-stream;
  client_body_temp_path {w}/nginx; proxy_temp_path {w}/nginx; fastcgi_temp_path {w}/nginx; uwsgi_temp_path {w}/nginx; scgi_temp_path {w}/nginx;
  server {{ listen 127.0.0.1:{self.https} ssl; ssl_certificate {w}/server.crt; ssl_certificate_key {w}/server.key;
           ssl_client_certificate {self.args.pki}/ca.crt; ssl_verify_client on; root {w}/www; }}
  server {{ listen 127.0.0.1:{self.http}; root {w}/www; }}
}}
""")
        self.spawn(["nginx", "-c", f"{w}/nginx.conf", "-p", f"{w}/nginx", "-e", f"{w}/nginx/error.log"])
        self.spawn(["/usr/bin/python3", f"{FIXTURES}/harness/fleetlock-server.py", "--port", str(self.lock), "--slots", "1",
                    "--cert", f"{w}/server.crt", "--key", f"{w}/server.key"])
        out = open(f"{w}/otlp.out", "w")
        self.spawn([f"{ROOT}/.build/pytools/bin/python", f"{FIXTURES}/harness/otlp-receiver.py", "--out", f"{w}/otlp.jsonl", "--quiet"], stdout=out)
        ports = {}
        for _ in range(200):
            ports = dict(l.split() for l in open(f"{w}/otlp.out").read().splitlines() if len(l.split()) == 2)
            if "CONTROL" in ports:
                break
            time.sleep(0.05)
        self.otlp = int(ports["LISTENING"])
        self.make_stick()

    def make_stick(self):
        """Release 5 as an OCI image in a registry, then an offline bundle (policy version 4 pinning
        the image) on an ext4 image: the USB stick. The registry is stopped afterwards."""
        w, cli = self.w, f"{ROOT}/.build/debug/apt-layer"
        reg, port = f"{w}/registry", self.free_port()
        sh(f"sh {FIXTURES}/registry/start-registry.sh {reg} {port}")
        registry = subprocess.Popen(["docker-registry", "serve", f"{reg}/config.yml"], stdout=subprocess.DEVNULL,
                                    stderr=open(f"{reg}/registry.log", "w"))
        try:
            for _ in range(200):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            t0 = time.time()
            out = sh(f"{cli} compose oci -q --repo {w}/www/repo --ref {self.commits['2026.12.5']} docker://127.0.0.1:{port}/acme/base:2026.12.5")
            digest = re.search(r"=> (sha256:[0-9a-f]{64}) ", out).group(1)
            self.image = f"docker://127.0.0.1:{port}/acme/base@{digest}"
            self.image_seconds = time.time() - t0
            os.makedirs(f"{w}/offline")
            self.sign(f"{w}/offline/policy.yaml", self.policy(4, "2026.12.5", self.commits["2026.12.5"], image=self.image))
            os.makedirs(f"{w}/stick")
            sh(f"{cli} bundle create -q --policy {w}/offline/policy.yaml --signature {w}/offline/policy.yaml.sig "
               f"{w}/stick/acme-2026.12.5.bundle")
        finally:
            registry.terminate()
            registry.wait(10)
            sh(f"sh {FIXTURES}/registry/stop-registry.sh {reg} {port}")
        size = os.path.getsize(f"{w}/stick/acme-2026.12.5.bundle")
        self.bundle_size = size
        sh(f"mke2fs -q -t ext4 -L APTLSTICK -d {w}/stick {w}/stick.img {(size * 11 // 10 + (64 << 20)) >> 10}k")
        shutil.rmtree(f"{w}/stick")

    def spawn(self, argv, stdout=subprocess.DEVNULL):
        self.procs.append(subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL))

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()

    def policy(self, version, release, commit, image=None):
        """Policy `version` of fleet acme: stream stable at `release` (`commit`, and `image` when given)."""
        return f"""apiVersion: apt-layer/v1
kind: FleetPolicy
fleet: acme
version: {version}
expires: 2099-01-01T00:00:00Z
remote: {{name: acme, url: "http://{GUEST_HOST}:{self.http}/repo"}}
streams:
  stable:
    ref: {self.args.ref}
    release:
      id: "{release}"
      commit: {commit}{f"{chr(10)}      image: {image}" if image else ""}
      published: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() - 60))}
      open-through-wave: 0
      waves:
        - {{name: all, until: 10000, start-after: 0s, ramp: 0s}}
reboot: {{fleetlock: "https://{GUEST_HOST}:{self.lock}", group: default, boot-tries: 1}}
telemetry: {{countme: true, report: "http://{GUEST_HOST}:{self.otlp}/v1/logs", heartbeat: 1h}}
health:
  timeout: 45s
  settle: 10s
  checks:
    - {{command: [/bin/sh, -c, "test ! -e /usr/share/acme/bad"], timeout: 10s}}
    - {{unit: systemd-journald.service}}
"""

    def sign(self, path, policy):
        """Writes `policy` to `path` and its ssh signature to `path`.sig."""
        open(path, "w").write(policy)
        sh(f"rm -f {path}.sig && ssh-keygen -q -Y sign -f {self.w}/keys/ops -n apt-layer-policy {path}")

    def publish(self, version, release, commit):
        w = self.w
        self.sign(f"{w}/keys/policy.yaml", self.policy(version, release, commit))
        for f in ["policy.yaml.sig", "policy.yaml"]:
            shutil.copy(f"{w}/keys/{f}", f"{w}/www/{f}.new")
            os.rename(f"{w}/www/{f}.new", f"{w}/www/{f}")

    def lock_state(self):
        ctx = ssl.create_default_context(cafile=f"{self.args.pki}/ca.crt")
        with urllib.request.urlopen(f"https://127.0.0.1:{self.lock}/debug/state", context=ctx, timeout=5) as r:
            return json.load(r)

    def reports(self):
        path = f"{self.w}/otlp.jsonl"
        return [json.loads(l) for l in open(path)] if os.path.exists(path) else []

    # ---------- the guest's side ----------
    def put(self, path, data, mode="0644"):
        b64 = base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()
        code, out = self.vm.qga.sh(f"mkdir -p $(dirname {path}) && echo {b64} | base64 -d > {path} && chmod {mode} {path}")
        if code != 0:
            raise RuntimeError(f"writing {path} in the VM: {out}")

    def configure_agent(self, offline=False):
        """Adds the fleet section to the image's agent.yaml and restarts the agent; `offline`: no
        policy URL, only the bundle directory /run/media/stick (a site with no route to the
        policy server or the registry)."""
        w = self.w
        self.put("/etc/apt-layer/fleet/allowed_signers", open(f"{w}/keys/allowed_signers").read())
        self.put("/etc/apt-layer/fleet/client.crt", open(f"{w}/client.crt").read())
        self.put("/etc/apt-layer/fleet/client.key", open(f"{w}/client.key").read(), "0600")
        if not hasattr(self, "agent_config"):
            self.agent_config = self.vm.qga.sh("cat /etc/apt-layer/agent.yaml")[1]
        source = "bundles: /run/media/stick" if offline else f"policy-url: https://{GUEST_HOST}:{self.https}/policy.yaml"
        if offline:
            self.vm.qga.sh("mkdir -p /run/media/stick")
        config = self.agent_config.rstrip("\n") + f"""
fleet:
  name: acme
  stream: stable
  {source}
  signers: /etc/apt-layer/fleet/allowed_signers
  ca: /etc/apt-layer/tls/ca.crt
  certificate: /etc/apt-layer/fleet/client.crt
  key: /etc/apt-layer/fleet/client.key
  poll-interval: 5s
  poll-jitter: 1s
telemetry: {{countme-delay: 5s, countme-endpoints: ["http://{GUEST_HOST}:{self.http}/policy.yaml"]}}
"""
        self.put("/etc/apt-layer/agent.yaml", config)
        self.vm.qga.sh("systemctl restart apt-layerd")
        return self.vm.wait_api() is not None

    def policy_status(self):
        try:
            status, doc = self.vm.api("GET", "/v1/policy", timeout=20)
            return doc if status == 200 and isinstance(doc, dict) else {}
        except OSError:
            return {}

    def wait_driver(self, states, timeout, going_down=False, commit=None):
        """Polls /v1/policy until the driver is in one of `states` (for the release `commit`, when
        given: the previous release's `failed` does not count); with `going_down`, an agent that
        stops answering for 20 s counts as `rebooting` (the VM is shutting down)."""
        deadline = time.time() + timeout
        doc, lost = {}, None
        while time.time() < deadline:
            doc = self.policy_status()
            if not doc:
                lost = lost or time.time()
                if going_down and time.time() - lost > 20:
                    return {"driver": {"state": "rebooting", "reason": "the agent stopped answering"}}
            else:
                lost = None
            driver = doc.get("driver") or {}
            if driver.get("state") in states and (commit is None or driver.get("commit") == commit):
                return doc
            time.sleep(3)
        return doc

    def booted_base(self):
        _, doc = self.vm.api("GET", "/v1/status")
        return next((d.get("baseChecksum") for d in doc.get("deployments", []) if d.get("booted")), None)

    # ---------- the mission ----------
    def start(self):
        """Sets the host's side up in the background (the archive repository takes minutes) while
        the VM tier's other checks run."""
        self.setup_error = None
        self.setup_seconds = 0.0

        def body():
            t0 = time.time()
            try:
                self.setup()
            except Exception as e:  # reported by run()
                self.setup_error = repr(e)[:500]
            self.setup_seconds = time.time() - t0

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def run(self, boot_id):
        vm, check = self.vm, self.check
        if not getattr(self, "thread", None):
            self.start()
        self.thread.join()
        if not check("fleet: releases, a signed policy server, FleetLock and an OTLP receiver on the host side", self.setup_error is None,
                     self.setup_error or f"set up in {self.setup_seconds:.0f} s (in the background)"):
            return boot_id
        if not check("fleet: apt-layerd restarted under its unit with a fleet: section", self.configure_agent()):
            return boot_id
        deployments = vm.api("GET", "/v1/status")[1].get("deployments", [])
        pending_kargs = next((d.get("kernelArguments", "") for d in deployments if d.get("default")), "")
        requested = sorted(p.get("name") for d in deployments if d.get("default") for p in d.get("requestedLocalPackages", []))

        # Release 2: published, staged with what the operator layered, reboot slot, reboot, healthy.
        r2 = self.commits["2026.12.2"]
        t_publish = time.time()
        self.publish(1, "2026.12.2", r2)
        doc = self.wait_driver({"waiting", "finalizing", "rebooting", "verifying", "healthy", "failed"}, 900, going_down=True)
        if not check("fleet: the driver stages release 2026.12.2 under the unit (remote configured in its sandbox)",
                     (doc.get("driver") or {}).get("state") not in ("failed", None), json.dumps(doc.get("driver"))[:400]):
            return boot_id
        boot_id, _ = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
        vm.boots.append(("fleet: publish → rebooted into release 2 (staging included)", time.time() - t_publish))
        vm.wait_api()
        doc = self.wait_driver({"healthy", "up-to-date", "failed"}, 300)
        vm.boots.append(("fleet: publish → healthy", time.time() - t_publish))
        driver = doc.get("driver") or {}
        check("fleet: release 2 booted and healthy", self.booted_base() == r2 and driver.get("state") in ("healthy", "up-to-date"),
              f"booted {str(self.booted_base())[:12]}, driver {json.dumps(driver)[:300]}")
        deployments = vm.api("GET", "/v1/status")[1].get("deployments", [])
        now = sorted(p.get("name") for d in deployments if d.get("booted") for p in d.get("requestedLocalPackages", []))
        check("fleet: the operator's layered packages were re-applied on the release", requested and now == requested
              and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0", f"before {requested}, after {now}")
        cmdline = vm.qga.sh("cat /proc/cmdline")[1].split()
        wanted = [a for a in pending_kargs.split() if not a.startswith(("ostree=", "BOOT_IMAGE="))]
        check("fleet: the release boots with the kernel arguments that were pending (root=, console=, an operator's kargs)",
              "root=" in " ".join(wanted) and all(a in cmdline for a in wanted), f"pending {wanted}, booted {cmdline}")
        check("fleet: the release's content is booted", vm.qga.sh("cat /usr/share/acme/release")[1].strip() == "2026.12.2")
        check("fleet: the remote was written by the agent", vm.qga.sh("grep -q 10.0.2.2 /etc/ostree/remotes.d/acme.conf")[0] == 0)
        _, txns = vm.api("GET", "/v1/transactions?limit=50")
        items = txns.get("transactions", []) if isinstance(txns, dict) else []
        check("fleet: staging ran as the agent's own journaled transaction (requester fleet:acme)",
              any(t.get("requester") == "fleet:acme" and t.get("operation") == "rebase" and t.get("state") == "succeeded" for t in items or []),
              str([(t.get("operation"), t.get("requester"), t.get("state")) for t in (items or [])][:6]))
        state = self.lock_state()
        check("fleet: FleetLock granted one slot and got it back", state.get("grants") == 1 and not any(state.get("holders", {}).values())
              and state.get("violations") == 0, json.dumps({k: state.get(k) for k in ("grants", "releases", "holders", "violations")}))
        reports = self.reports()
        check("fleet: status reports reached the OTLP receiver, the last one healthy on release 2",
              any((r.get("body") or {}).get("update", {}).get("state") in ("healthy", "up-to-date") for r in reports), f"{len(reports)} records")
        access = open(f"{self.w}/nginx/access.log").read()
        check("fleet: countme reached the policy server", "countme=" in access, f"{access.count('policy.yaml')} policy requests")

        # APT_LAYER_VM_FLEET=image (a development aid): release 2, then straight to release 5.
        if os.environ.get("APT_LAYER_VM_FLEET") != "image":
            boot_id = self.failing_releases(boot_id)
            if boot_id is None:
                return None
        return self.offline_release(boot_id)

    def failing_releases(self, boot_id):
        """Releases 3 (fails its health check) and 4 (panics at boot); None when a step failed."""
        vm, check = self.vm, self.check
        r2 = self.commits["2026.12.2"]
        # Release 3 fails its health check: reboot into it, roll back, reboot, denylist.
        r3 = self.commits["2026.12.3"]
        t_publish = time.time()
        self.publish(2, "2026.12.3", r3)
        doc = self.wait_driver({"rebooting", "verifying", "failed"}, 900, going_down=True)
        if not check("fleet: the driver stages release 2026.12.3 and reboots into it", (doc.get("driver") or {}).get("state") != "failed",
                     json.dumps(doc.get("driver"))[:400]):
            return None
        boot_id, _ = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
        booted_bad = vm.qga.sh("cat /usr/share/acme/release")[1].strip()
        boot_id, _ = vm.wait_boot(previous_boot_id=boot_id, timeout=600)
        vm.wait_api()
        doc = self.wait_driver({"failed", "up-to-date"}, 300)
        vm.boots.append(("fleet: failing release → rolled back (two reboots)", time.time() - t_publish))
        denylist = doc.get("denylist") or []
        check("fleet: the failing release booted, failed its check, was rolled back and denylisted",
              booted_bad == "2026.12.3" and self.booted_base() == r2 and any(d.get("commit") == r3 for d in denylist),
              f"booted into {booted_bad!r}, now {str(self.booted_base())[:12]}, denylist {json.dumps(denylist)[:300]}")
        state = self.lock_state()
        check("fleet: the slot was given back after the rollback", state.get("grants") == 2 and not any(state.get("holders", {}).values()),
              json.dumps({k: state.get(k) for k in ("grants", "releases", "holders")}))

        # Release 4 panics at boot: the policy's boot-tries (1) arms the counter; GRUB boots it once,
        # it panics and reboots, GRUB falls back to release 2; the agent restores the default, the
        # driver sees the release not booted, denylists it with that cause and reports it.
        r4 = self.commits["2026.12.4"]
        t_publish = time.time()
        # From here on the serial log shows only release 4's boots (staging does not reboot).
        mark = len(vm.serial_text())
        self.publish(3, "2026.12.4", r4)
        doc = self.wait_driver({"rebooting", "verifying", "failed"}, 900, going_down=True, commit=r4)
        if not check("fleet: the driver stages release 2026.12.4 (it panics) and reboots into it", (doc.get("driver") or {}).get("state") != "failed",
                     json.dumps(doc.get("driver"))[:400]):
            return None
        boot_id, _ = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
        vm.wait_api()
        doc = self.wait_driver({"failed", "up-to-date"}, 300, commit=r4)
        vm.boots.append(("fleet: panicking release → fell back by itself (one panicking boot)", time.time() - t_publish))
        serial = vm.serial_text()[mark:]
        entries = re.findall(r"Booting `[^']*\(ostree:(\d+)\)'", serial)
        denylist = [d for d in doc.get("denylist") or [] if d.get("commit") == r4]
        _, status = vm.api("GET", "/v1/status")
        fallback = (status.get("bootCounter") or {}).get("fallback") or {}
        check("fleet: the panicking release fell back after its one try with no input; the driver denylisted it as a fall-back",
              entries == ["0", "1"] and serial.count("Kernel panic - not syncing") == 1 and self.booted_base() == r2
              and denylist and "fell back" in denylist[0].get("reason", "") and fallback.get("bootedDeployment"),
              f"GRUB booted {entries}, now {str(self.booted_base())[:12]}, denylist {json.dumps(denylist)[:300]}, fallback {json.dumps(fallback)}")
        reports = self.reports()
        check("fleet: the fall-back was reported (status report: failed, the bootloader fell back)",
              any("fell back" in json.dumps(r.get("body") or {}) for r in reports), f"{len(reports)} records")
        state = self.lock_state()
        check("fleet: the slot was given back after the fall-back", state.get("grants") == 3 and not any(state.get("holders", {}).values()),
              json.dumps({k: state.get(k) for k in ("grants", "releases", "holders")}))
        return boot_id

    def offline_release(self, boot_id):
        """Release 5 from a USB stick: the agent, reconfigured with no policy URL, finds the bundle
        on the stick mounted on its `fleet.bundles` directory, verifies the policy, keeps the
        bundle, stages the image release it pins from it (the registry is gone), takes the slot,
        reboots into it and passes the health checks."""
        vm, check = self.vm, self.check
        r5 = self.commits["2026.12.5"]
        check("fleet: release 2026.12.5 composed as an OCI image from the archive repository, pushed to a TLS registry, bundled with "
              "its signed policy onto a USB stick; the registry stopped", getattr(self, "bundle_size", 0) > 0,
              f"{getattr(self, 'image', None)}, composed and pushed in {getattr(self, 'image_seconds', 0):.0f} s, "
              f"bundle {getattr(self, 'bundle_size', 0) / 1e6:.0f} MB")
        grants = self.lock_state().get("grants", 0)
        if not check("fleet: apt-layerd restarted offline (bundles: /run/media/stick, no policy-url)", self.configure_agent(offline=True)):
            return boot_id
        t_publish = time.time()
        answers = [vm.qmp("blockdev-add", {"node-name": "stick", "driver": "raw", "read-only": True,
                                           "file": {"driver": "file", "filename": f"{self.w}/stick.img", "read-only": True}}),
                   vm.qmp("device_add", {"driver": "usb-storage", "bus": "xhci.0", "drive": "stick", "id": "stick"})]
        code, out = vm.qga.sh("for i in $(seq 120); do [ -e /dev/disk/by-label/APTLSTICK ] && break; sleep 1; done; "
                              "mount -o ro /dev/disk/by-label/APTLSTICK /run/media/stick && ls /run/media/stick")
        if not check("fleet: the USB stick plugged in (QMP) and mounted on the agent's bundle directory", code == 0 and ".bundle" in out,
                     f"{out.strip()[:300]} {json.dumps(answers)[:300]}"):
            return boot_id
        doc = self.wait_driver({"rebooting", "verifying", "failed"}, 1800, going_down=True, commit=r5)
        if not check("fleet: the driver stages release 2026.12.5 from the bundle (the image it pins) and reboots into it",
                     (doc.get("driver") or {}).get("state") != "failed", json.dumps(doc.get("driver"))[:400]):
            return boot_id
        boot_id, _ = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
        vm.wait_api()
        doc = self.wait_driver({"healthy", "up-to-date", "failed"}, 300, commit=r5)
        vm.boots.append(("fleet: USB stick plugged → booted and healthy on image release 5 (import and staging included)", time.time() - t_publish))
        driver = doc.get("driver") or {}
        check("fleet: image release 5 booted and healthy, its exact commit",
              self.booted_base() == r5 and driver.get("state") in ("healthy", "up-to-date")
              and vm.qga.sh("cat /usr/share/acme/release")[1].strip() == "2026.12.5",
              f"booted {str(self.booted_base())[:12]}, driver {json.dumps(driver)[:300]}")
        origin = vm.qga.sh("cat \"$(readlink -f \"$(sed -n 's/.*ostree=\\([^ ]*\\).*/\\1/p' /proc/cmdline)\")\".origin")[1]
        digest = self.image.split("@")[1]
        check("fleet: the booted origin names the image by its digest; the layered packages came along",
              f"container-image-reference=ostree-unverified-registry:{self.image[len('docker://'):]}" in origin
              and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0", origin.strip()[:400])
        code, out = vm.qga.sh("ls /ostree/apt-layer/bundles; du -sm /ostree/apt-layer/bundles /ostree/apt-layer/images | cut -f1")
        check("fleet: the agent kept the accepted bundle (the stick may leave)", out.startswith("policy-4.bundle\n"), out.strip())
        vm.qga.sh("umount /run/media/stick")
        vm.qmp("device_del", {"id": "stick"})
        state = self.lock_state()
        check("fleet: the slot was taken and given back for the offline release",
              state.get("grants") == grants + 1 and not any(state.get("holders", {}).values()),
              json.dumps({k: state.get(k) for k in ("grants", "releases", "holders")}))
        print(f"note: the image release's digest {digest}; stored bundle and image cache in the guest (MB): {' '.join(out.split()[1:])}")
        return boot_id
