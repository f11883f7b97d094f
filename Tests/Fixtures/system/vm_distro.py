"""The VM tier's distribution scenario (issue 22): an image of another distribution (Debian 13
"trixie", Ubuntu 24.04 "noble") composed from deploy/treefiles/SUITE-vm.yaml with the same apt-layer
.deb that the Debian 12 image carries (built once, on Debian 12), booted under OVMF with Secure Boot
enforced through that distribution's own signed chain (shim → signed GRUB, whose prefix is
EFI/debian or EFI/ubuntu → signed kernel).

Checks: the system boots to running (or degraded with its failed units named) with the firmware
enforcing Secure Boot; os-release names the distribution; apt-layerd runs as Type=notify under
systemd with its watchdog armed; countme's User-Agent (sent to a test server on the host) shows the
distribution's real `NAME VERSION_ID`; the stateroot is named by the os-release ID; an install of
uploaded .debs through the API is staged and the boot counter armed, the reboot boots it (the
program runs, the postinst's system user exists, made by that distribution's adduser), the
distribution's signed GRUB counted the boot and the agent marked it good, and a rollback through
the API + reboot boots the previous deployment.
"""
import http.server, json, os, re, threading, time

from vm_uefi import SECURE_BOOT_VAR, booted

GUEST_HOST = "10.0.2.2"
# What each distribution's os-release says (NAME VERSION_ID), as countme's User-Agent must show it.
EXPECTED = {"trixie": "Debian GNU/Linux 13", "noble": "Ubuntu 24.04"}


class CountmeServer:
    """Answers GET …?countme=N with 200 and keeps each request's User-Agent."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if "countme=" in self.path:
                    seen.append(self.headers.get("User-Agent", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def distribution(vm, args, check, suite):
    name = {"trixie": "Debian 13", "noble": "Ubuntu 24.04"}[suite]
    countme = CountmeServer()
    try:
        _run(vm, args, check, name, suite, countme)
    finally:
        countme.stop()


def _run(vm, args, check, name, suite, countme):
    vm.start()
    t0 = time.time()
    boot_id, state = vm.wait_boot(timeout=900)
    vm.boots.append((f"{name}: first boot (OVMF, Secure Boot; power-on to settled)", time.time() - t0))
    failed = vm.qga.sh("systemctl --failed --no-legend --plain")[1].strip()
    check(f"{name}: boots under OVMF through its own shim and signed GRUB to running (or degraded with a reason)",
          state in ("running", "degraded"), f"{state}" + (f"; failed units: {failed}" if failed else ""))
    sb = vm.qga.sh(f"od -An -t u1 {SECURE_BOOT_VAR}")[1].split()
    check(f"{name}: the firmware enforces Secure Boot", sb[-1:] == ["1"], " ".join(sb))
    release = vm.qga.sh(". /usr/lib/os-release; echo \"$NAME $VERSION_ID\"")[1].strip()
    check(f"{name}: os-release names {EXPECTED[suite]}", release == EXPECTED[suite], release)
    props = vm.qga.sh("systemctl show apt-layerd -p Type -p ActiveState -p WatchdogUSec")[1]
    p = dict(l.split("=", 1) for l in props.split("\n") if "=" in l)
    check(f"{name}: apt-layerd (the package built on Debian 12) active as Type=notify with its watchdog armed",
          p.get("ActiveState") == "active" and p.get("Type") == "notify" and p.get("WatchdogUSec") not in (None, "0", "infinity"), str(p))
    # countme to the host's test server: agent.yaml gains the endpoint, the agent restarts.
    vm.qga.sh("printf 'telemetry: {countme-delay: 1s, countme-endpoints: [\"http://%s:%d/countme\"]}\\n' >> /etc/apt-layer/agent.yaml"
              " && systemctl restart apt-layerd" % (GUEST_HOST, countme.port))
    doc = vm.wait_api()
    if not check(f"{name}: the API answers over the forwarded port with mTLS", doc is not None):
        return
    deadline = time.time() + 60
    while not countme.seen and time.time() < deadline:
        time.sleep(1)
    agent = countme.seen[0] if countme.seen else ""
    check(f"{name}: countme's User-Agent shows the distribution's NAME VERSION_ID", f"({EXPECTED[suite]};" in agent, agent or "no countme request")

    first = booted(doc)
    osid = vm.qga.sh(". /usr/lib/os-release; echo $ID")[1].strip()
    check(f"{name}: the stateroot is the distribution's os-release ID ({osid})", first.get("osname") == osid and osid, str(first.get("id")))
    digests = [vm.upload(f"{args.debs}/{n}") for n in sorted(os.listdir(args.debs)) if re.match(r"fixture-(lib|app|user)-1\.0\.deb$", n)]
    _, t = vm.transaction("install", {"packages": digests})
    _, doc = vm.api("GET", "/v1/status")
    staged = next((d for d in doc.get("deployments", []) if d.get("staged")), {})
    armed = doc.get("bootCounter") or {}
    if not check(f"{name}: an install through the API is staged and the boot counter armed for it",
                 t.get("state") == "succeeded" and staged
                 and armed.get("deployment") == f"{staged.get('checksum')}.{staged.get('serial')}", f"{str(t)[:200]} {json.dumps(armed)}"):
        return
    boot_id, state = vm.reboot(boot_id, f"{name}: reboot into the staged deployment")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    check(f"{name}: the reboot booted the staged deployment; the layered program runs; the postinst's user exists",
          booted(doc).get("checksum") == staged.get("checksum") and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0"
          and vm.qga.sh("getent passwd fixtured")[0] == 0, f"booted {booted(doc).get('id', '')[:24]}")
    counter = vm.counter_when(lambda c: c.get("state") == "unarmed", 120)
    trial = vm.qga.sh("journalctl -b -u apt-layerd --no-pager -o cat | grep 'counted trial'")[1]
    left, boots, _ = vm.trial_count(2)
    check(f"{name}: its signed GRUB counted the boot down in /boot's grubenv and the agent marked it good",
          f"({left} tries left)" in trial and counter.get("state") == "unarmed",
          f"{boots or 'no'} GRUB boot line(s); {trial.strip()[:200]}; {json.dumps(counter)}")
    _, t = vm.transaction("rollback", {})
    boot_id, state = vm.reboot(boot_id, f"{name}: reboot after rollback")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    check(f"{name}: rollback through the API + reboot boots the previous deployment",
          t.get("state") == "succeeded" and booted(doc).get("checksum") == first.get("checksum")
          and vm.qga.sh("command -v fixture-app")[0] != 0, f"booted {booted(doc).get('id', '')[:24]}")
