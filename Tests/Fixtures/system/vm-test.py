#!/usr/bin/env python3
"""The VM tier: boots an image written by `apt-layer compose image` under qemu (TCG) and drives it
the way Fedora CoreOS's kola drives rpm-ostree: the agent runs as the real systemd service, the
host talks to it over a forwarded port with mTLS, and commands inside the VM run through the qemu
guest agent (virtio-serial). The serial console goes to a log; every boot is timed.

  vm-test.py --image disk.raw --pki DIR --debs DIR [--work DIR] [--keep] [--repo REPO --ref REF] [--only-fleet]

Checks, each printed ok/FAIL (exit 1 on any FAIL):
  boot: system running (or degraded with its failed units named), apt-layerd active, Type=notify,
  watchdog armed; an install through the API with applyLive is staged (pending, finalization
  state shown) and applied live (the program runs, /usr a read-only transient overlay, the
  script's account, status `live`); reboot: booted the new deployment (/proc/cmdline, the API),
  the layered program runs, nothing live is left, an /etc edit made before the install survives,
  the maintainer script's system user exists; rollback
  through the API + reboot boots the previous deployment; --lock-finalization + reboot keeps the
  old deployment, finalize + reboot applies it; SIGKILL of the agent mid-transaction: systemd
  restarts it, the transaction is interrupted, the next one succeeds; journald carries
  APT_LAYER_TXN / APT_LAYER_OPERATION; systemd-analyze security prints the unit's exposure.
  Then the fleet mission (Tests/Fixtures/system/vm_fleet.py, with --repo): a signed policy over HTTPS, two
  releases in an archive repository over HTTP, FleetLock, OTLP, countme; the driver stages release 2
  with the operator's packages and pending kernel arguments, reboots by itself, passes its health
  checks, gives the slot back; release 3 fails its health check, is rolled back and denylisted.
  --only-fleet: boot, layer the operator's packages, run only the mission.
  --all: also the scenarios CI leaves out for time: an operator's release whose kernel panics and one
  whose init is missing each fall back without a fleet.
  --uefi-image COPY: afterwards boot a pristine copy of the (hybrid) image under OVMF with Secure Boot
  enforced (Tests/Fixtures/system/vm_uefi.py); --only-secure-boot runs only that.
  --distro trixie|noble: only the distribution scenario (Tests/Fixtures/system/vm_distro.py) on an
  image of Debian 13 or Ubuntu 24.04, under Secure Boot.
"""
import argparse, base64, hashlib, json, os, random, re, shutil, socket, ssl, subprocess, sys, tempfile, time, urllib.request

from vm_fleet import FleetMission
from vm_uefi import secure_boot
from vm_distro import distribution

RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    return ok


def free_port():
    while True:
        port = random.randint(20000, 31999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


class GuestAgent:
    """qemu-guest-agent over its virtio-serial port (QMP-style JSON lines)."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""

    def connect(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.close()
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(3)
                self.sock.connect(self.path)
                self.buf = b""
                n = random.randint(1, 1 << 30)
                self.send({"execute": "guest-sync-delimited", "arguments": {"id": n}})
                # The answer follows a 0xFF sentinel; earlier bytes are stale.
                while True:
                    answer = self.read()
                    if answer.get("return") == n:
                        self.sock.settimeout(30)
                        return True
            except (OSError, ValueError, socket.timeout):
                time.sleep(2)
        return False

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("guest agent closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.replace(b"\xff", b"").strip()
        return json.loads(line) if line else {}

    def call(self, execute, arguments=None):
        self.send({"execute": execute, "arguments": arguments or {}})
        answer = self.read()
        if "error" in answer:
            raise RuntimeError(f"{execute}: {answer['error']}")
        return answer.get("return")

    def sh(self, command, timeout=120):
        """Runs /bin/sh -c COMMAND in the VM; returns (exit code, stdout+stderr)."""
        pid = self.call("guest-exec", {"path": "/bin/sh", "arg": ["-c", command], "capture-output": True})["pid"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                return st.get("exitcode", -1), out + err
            time.sleep(0.5)
        raise TimeoutError(command)

    def fire(self, command):
        """Starts a command and does not wait (reboot)."""
        self.call("guest-exec", {"path": "/bin/sh", "arg": ["-c", command]})


# A kernel RCU stall report line ("[  129.177432] rcu: INFO: rcu_preempt detected stalls…" and the
# dump that follows it).
RCU_STALL = re.compile(r"^\[\s*[0-9.]+\] rcu: ")


class VM:
    def __init__(self, args, image=None, firmware="bios", work=None):
        """`firmware`: bios (SeaBIOS) or secure-boot (OVMF with Microsoft's keys enrolled: Secure
        Boot enforced, q35 with SMM)."""
        self.args = args
        self.image = image or args.image
        self.firmware = firmware
        self.work = work or args.work or tempfile.mkdtemp(prefix="apt-layer-vm.")
        os.makedirs(self.work, exist_ok=True)
        self.port = free_port()
        self.qga = GuestAgent(f"{self.work}/qga.sock")
        self.serial = f"{self.work}/serial.log"
        self.proc = None
        self.boots = []
        self.footprint = []  # (what, value) rows the report prints

    def measure_footprint(self, label):
        """The packaged agent's memory under its unit (RSS, anonymous, PSS from smaps_rollup, and
        the unit's cgroup), the installed binaries and package: a report, not a check."""
        out = self.qga.sh(
            "p=$(systemctl show -p MainPID --value apt-layerd); "
            "awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} /^Pss:/ {q=$2} END {print r, a, q}' /proc/$p/smaps_rollup; "
            "systemctl show -p MemoryCurrent --value apt-layerd; "
            "stat -c %s /usr/bin/apt-layer; dpkg-query -W -f '${Installed-Size}\\n' apt-layer 2>/dev/null || echo 0; "
            "readlink /usr/bin/apt-layerd || echo a-program-of-its-own")[1].split()
        if len(out) < 7 or not all(w.isdigit() for w in out[:6]):
            self.footprint.append((label, f"not measured: {' '.join(out)[:120]}"))
            return
        rss, anon, pss, cgroup, program, installed = (int(w) for w in out[:6])
        self.footprint.append((f"{label}: RSS / anonymous / PSS / the unit's cgroup",
                               f"{rss / 1024:.1f} / {anon / 1024:.1f} / {pss / 1024:.1f} / {cgroup / 1048576:.1f} MB"))
        if not any(row[0].startswith("installed:") for row in self.footprint):
            self.footprint.append((f"installed: /usr/bin/apt-layer (apt-layerd: {out[6]}) / the package",
                                   f"{program / 1048576:.1f} / {installed / 1024:.1f} MB"))

    def start(self):
        open(self.serial, "w").close()
        accel = "tcg,thread=multi"
        machine = "q35"
        firmware = []
        if self.firmware == "secure-boot":
            # Debian's ovmf: the Secure Boot build and a variable store with Microsoft's keys
            # enrolled (Secure Boot on, README.Debian); a private copy of the store per VM.
            machine = "q35,smm=on"
            shutil.copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", f"{self.work}/OVMF_VARS.fd")
            firmware = ["-global", "driver=cfi.pflash01,property=secure,value=on",
                        "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
                        "-drive", f"if=pflash,format=raw,unit=1,file={self.work}/OVMF_VARS.fd"]
        argv = ["qemu-system-x86_64", "-machine", machine, "-accel", accel, "-cpu", "max", "-smp", "2", "-m", "2048", *firmware,
                "-drive", f"file={self.image},format=raw,if=virtio,cache=unsafe",
                "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{self.port}-:7443",
                "-chardev", f"socket,path={self.work}/qga.sock,server=on,wait=off,id=qga0",
                "-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
                # A hardware watchdog (Intel 6300ESB; qemu resets the machine when it expires):
                # the image's systemd drives it (RuntimeWatchdogSec=, compose image).
                "-device", "i6300esb",
                # A USB controller, where the fleet mission plugs its "USB stick" (an offline bundle).
                "-device", "qemu-xhci,id=xhci",
                # QMP, for the one platform reset wait_boot may make (below) and that stick.
                "-qmp", f"unix:{self.work}/qmp.sock,server=on,wait=off",
                "-display", "none", "-serial", f"file:{self.serial}"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(f"{self.work}/qemu.log", "a"), stderr=subprocess.STDOUT)

    def serial_text(self):
        return open(self.serial, "rb").read().decode(errors="replace")

    def qmp(self, command, arguments=None):
        """Runs one QMP command (after the capabilities handshake); returns its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(f"{self.work}/qmp.sock")
            f = s.makefile("rwb")
            f.readline()
            for execute, given in (("qmp_capabilities", None), (command, arguments)):
                f.write(json.dumps({"execute": execute, **({"arguments": given} if given else {})}).encode() + b"\n")
                f.flush()
                while True:
                    answer = json.loads(f.readline())
                    if "return" in answer or "error" in answer:
                        break
            return answer

    def wait_boot(self, previous_boot_id=None, timeout=600):
        """Waits until the guest agent answers in a new boot and the system has settled; returns
        (boot id, system state).

        After a reboot, a machine whose serial console stays silent for 300 s has not reached its
        firmware's boot manager or GRUB at all: under TCG, OVMF with SMM has hung in its reset
        this way (once in a full run, the Ubuntu scenario; the same image booted at once when run
        again). Such a machine is reset once through QMP, and that is printed and counted in the
        report; a second silence fails as before. Anything our image prints (GRUB's menu, the
        kernel, the login prompt) restarts the clock, so a failing boot still fails; the kernel's
        RCU stall reports do not (a guest kernel whose timers stopped under TCG printed only those,
        every 21 s, and never came up: once in a full run, the Debian 12 staged reboot)."""
        t0 = time.time()
        size, quiet_since = os.path.getsize(self.serial), time.time()
        while time.time() - t0 < timeout:
            now = os.path.getsize(self.serial)
            if now != size:
                with open(self.serial, "rb") as f:
                    f.seek(size)
                    lines = f.read(now - size).decode(errors="replace").splitlines()
                if any(line.strip() and not RCU_STALL.match(line) for line in lines):
                    quiet_since = time.time()
                size = now
            if previous_boot_id and time.time() - quiet_since > 300 and not getattr(self, "_reset_once", False):
                self._reset_once = True
                print(f"note: no serial output but RCU stall reports for 300 s after the reboot; resetting the machine once (QMP system_reset): {self.qmp('system_reset')}")
                self.boots.append(("platform reset after 300 s of silence (QMP)", time.time() - t0))
                quiet_since = time.time()
            if self.qga.connect(30):
                try:
                    code, out = self.qga.sh("cat /proc/sys/kernel/random/boot_id")
                    if code == 0 and out.strip() and out.strip() != previous_boot_id:
                        code, state = self.qga.sh("systemctl is-system-running --wait", timeout=300)
                        return out.strip(), state.strip()
                except (OSError, RuntimeError, TimeoutError, ValueError):
                    pass
            if self.proc.poll() is not None:
                raise SystemExit(f"qemu exited {self.proc.returncode}; serial tail:\n{self.serial_text()[-3000:]}")
            time.sleep(2)
        raise SystemExit(f"no boot within {timeout} s; serial tail:\n{self.serial_text()[-3000:]}")

    def reboot(self, boot_id, label):
        t0 = time.time()
        self.reboot_mark = len(self.serial_text())
        self.qga.fire("systemctl reboot")
        new_id, state = self.wait_boot(previous_boot_id=boot_id)
        self.boots.append((label, time.time() - t0))
        return new_id, state

    # mTLS to the agent through the forwarded port
    def api(self, method, path, body=None, timeout=120):
        ctx = ssl.create_default_context(cafile=f"{self.args.pki}/ca.crt")
        ctx.load_cert_chain(f"{self.args.pki}/admin.crt", f"{self.args.pki}/admin.key")
        data = None
        headers = {}
        if isinstance(body, (bytes, bytearray)):
            data, headers["content-type"] = bytes(body), "application/vnd.debian.binary-package"
        elif body is not None:
            data, headers["content-type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, (json.loads(text) if text.strip().startswith("{") else text)

    def wait_api(self, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                status, doc = self.api("GET", "/v1/status", timeout=10)
                if status == 200:
                    return doc
            except OSError:
                pass
            time.sleep(1)
        return None

    def transaction(self, operation, arguments, wait=True, timeout=900):
        status, doc = self.api("POST", "/v1/transactions?wait=true", {"operation": operation, "arguments": arguments})
        if status not in (200, 202) or not wait:
            return status, doc
        tid = doc["id"]
        t0 = time.time()
        while time.time() - t0 < timeout:
            _, t = self.api("GET", f"/v1/transactions/{tid}")
            if t.get("state") in ("succeeded", "failed", "cancelled", "interrupted"):
                return 200, t
            time.sleep(2)
        return 0, {"id": tid, "state": "timeout"}

    def upload(self, path):
        status, doc = self.api("POST", "/v1/package-files", open(path, "rb").read())
        return f"sha256:{doc['sha256']}" if status in (200, 201) else None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def trial_count(self, armed_tries):
        """How the boot counter should read after the last reboot: (tries left expected, GRUB's boots
        seen, a note). GRUB counts down once per boot it makes; Debian's GRUB prints "Booting `…'"
        on the serial console for each. Under TCG a guest has been reset once more between GRUB and
        the agent (a staged reboot of 90 s instead of 44, "0 tries left"; the serial log was gone):
        GRUB counted right, twice, and the note quotes the console before the second boot. Ubuntu's
        signed GRUB prints nothing there (its quiet-boot patches), so with no line seen it is one
        boot, as before: boots is then None."""
        if not hasattr(self, "reboot_mark"):
            raise RuntimeError("trial_count before any reboot()")
        serial = self.serial_text()[self.reboot_mark:]
        starts = [m.start() for m in re.finditer(r"Booting `[^']*'", serial)]
        if not starts:
            return armed_tries - 1, None, ""
        note = ""
        if len(starts) > 1:
            before = [l for l in serial[:starts[1]].splitlines() if l.strip()][-25:]
            note = f"GRUB booted {len(starts)} times after the reboot; the console before the second boot:\n  " + "\n  ".join(before)
            print(f"note: {note}")
        return armed_tries - len(starts), len(starts), note

    def counter_when(self, ready, timeout):
        """Polls the status document's bootCounter until `ready(counter)` holds; returns the last one."""
        deadline, counter = time.time() + timeout, {}
        while time.time() < deadline:
            try:
                _, doc = self.api("GET", "/v1/status", timeout=20)
                counter = doc.get("bootCounter") or {}
                if ready(counter):
                    break
            except OSError:
                pass
            time.sleep(2)
        return counter


def fall_back(vm, boot_id, what, karg, marker):
    """Stages `karg` on the booted deployment, reboots, and checks that the two counted tries failed
    (`marker` in the serial log twice, when given), that GRUB then booted the previous entry, and that
    the agent restored the default and reports the fall-back. Returns the new boot id."""
    _, doc = vm.api("GET", "/v1/status")
    good = booted(doc)
    code, t = vm.transaction("kargs", {"append": [karg]})
    _, doc = vm.api("GET", "/v1/status")
    broken = next((d for d in doc.get("deployments", []) if d.get("staged")), {})
    broken_id = f"{broken.get('checksum')}.{broken.get('serial')}"
    if not check(f"{what}: staged, boot counter armed", t.get("state") == "succeeded"
                 and (doc.get("bootCounter") or {}).get("deployment") == broken_id, str(t)[:200]):
        return boot_id
    mark = len(vm.serial_text())
    t_fall = time.time()
    vm.qga.fire("systemctl reboot")
    boot_id, state = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
    vm.boots.append((f"{what}: two failing boots, then the fall-back boot", time.time() - t_fall))
    vm.wait_api()
    serial = vm.serial_text()[mark:]
    # GRUB prints the entry it boots; libostree's titles end in (ostree:INDEX).
    entries = re.findall(r"Booting `[^']*\(ostree:(\d+)\)'", serial)
    failures = serial.count(marker) if marker else None
    counter = vm.counter_when(lambda c: c.get("fallback"), 60)
    _, doc = vm.api("GET", "/v1/status")
    now = booted(doc)
    check(f"{what}: fell back to the previous deployment after its 2 tries, with no input",
          entries == ["0", "0", "1"] and failures in (None, 2) and now.get("id") == good.get("id")
          and karg not in vm.qga.sh("cat /proc/cmdline")[1],
          f"GRUB booted entries {entries}, {failures} failures seen, booted {now.get('id', '')[:20]}, was {good.get('id', '')[:20]}")
    fallback = counter.get("fallback") or {}
    check(f"{what}: the agent made the booted deployment the default again and status reports the fall-back",
          now.get("default") and fallback.get("failedDeployment") == broken_id and counter.get("state") == "unarmed",
          json.dumps(counter)[:300])
    out = vm.qga.sh("apt-layer status")[1]
    check(f"{what}: apt-layer status shows LastBoot: fell back", f"LastBoot: fell back from {broken_id[:12]}" in out, out[:300])
    return boot_id


def cmdline_deployment(vm):
    """The deployment directory the kernel command line's ostree= resolves to."""
    return vm.qga.sh("readlink -f \"$(sed -n 's/.*ostree=\\([^ ]*\\).*/\\1/p' /proc/cmdline)\"")[1].strip()


def booted(status_doc):
    return next((d for d in status_doc.get("deployments", []) if d.get("booted")), {})


class Abort(Exception):
    pass


def run(args):
    if args.distro:
        return run_distribution(args)
    vm = VM(args)
    mission = None
    if args.repo and not args.only_secure_boot:
        # The fleet mission's host side (an archive repository of the releases, servers) is made
        # while the other checks run.
        mission = FleetMission(vm, args, check, free_port)
        mission.start()
    args.mission = mission
    try:
        if not args.only_secure_boot:
            scenario(vm, args)
    except Abort:
        pass
    except Exception as e:  # a broken step is a failed check, with what broke
        check("the scenario ran to its end", False, repr(e)[:500])
    finally:
        vm.stop()
        if mission:
            mission.thread.join()
            mission.stop()
    boots = list(vm.boots)
    if args.uefi_image:
        uefi = VM(args, image=args.uefi_image, firmware="secure-boot", work=f"{vm.work}/uefi")
        try:
            secure_boot(uefi, args, check)
        except Exception as e:  # a broken step is a failed check, with what broke
            check("the Secure Boot scenario ran to its end", False, repr(e)[:500])
        finally:
            uefi.stop()
            boots += uefi.boots
    return report(args, vm, boots)


def report(args, vm, boots):
    print("\n| boot (TCG, 2 vCPUs) | seconds |\n|---|---|")
    for label, seconds in boots:
        print(f"| {label} | {seconds:.0f} |")
    if vm.footprint:
        print("\n| the packaged agent (as the .deb installs it, under its unit) | value |\n|---|---|")
        for label, value in vm.footprint:
            print(f"| {label} | {value} |")
    if not args.keep and not args.work:
        subprocess.run(["rm", "-rf", vm.work])
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} of {len(RESULTS)} checks passed")
    return 1 if failed else 0


def run_distribution(args):
    """--distro SUITE: the distribution scenario (vm_distro.py) on an image of that distribution."""
    vm = VM(args, firmware="secure-boot")
    try:
        distribution(vm, args, check, args.distro)
    except Exception as e:  # a broken step is a failed check, with what broke
        check(f"the {args.distro} scenario ran to its end", False, repr(e)[:500])
    finally:
        vm.stop()
    return report(args, vm, vm.boots)


def scenario(vm, args):
    if args.only_fleet:
        vm.start()
        boot_id, _ = vm.wait_boot()
        if not check("the API answers over the forwarded port with mTLS", vm.wait_api() is not None):
            raise Abort()
        digests = [vm.upload(f"{args.debs}/{name}") for name in sorted(os.listdir(args.debs))
                   if re.match(r"fixture-(lib|app|user)-1\.0\.deb$", name)]
        code, t = vm.transaction("install", {"packages": digests})
        check("an operator's packages layered (pending) before the rollout", t.get("state") == "succeeded", str(t)[:300])
        fleet(vm, args, boot_id)
        return
    if True:
        vm.start()
        t0 = time.time()
        boot_id, state = vm.wait_boot()
        vm.boots.append(("first boot (power-on to settled)", time.time() - t0))
        failed = vm.qga.sh("systemctl --failed --no-legend --plain")[1].strip()
        check("first boot: system running (or degraded with a reason)", state in ("running", "degraded"),
              f"{state}" + (f"; failed units: {failed}" if failed else ""))
        props = vm.qga.sh("systemctl show apt-layerd -p Type -p ActiveState -p WatchdogUSec -p NRestarts")[1]
        p = dict(l.split("=", 1) for l in props.split("\n") if "=" in l)
        check("apt-layerd active as Type=notify with its watchdog armed",
              p.get("ActiveState") == "active" and p.get("Type") == "notify" and p.get("WatchdogUSec") not in (None, "0", "infinity"), str(p))
        doc = vm.wait_api()
        if not check("the API answers over the forwarded port with mTLS", doc is not None):
            raise Abort()
        first = booted(doc)
        time.sleep(2)
        vm.measure_footprint("idle after boot and one status request")
        check("/proc/cmdline's ostree= names the booted deployment", first.get("checksum", "-") in cmdline_deployment(vm),
              cmdline_deployment(vm))
        # A release that cannot boot must reboot by itself (issue 21): a panic after 10 s, dracut's
        # emergency without a shell; a hung host is reset by the watchdog systemd drives.
        cmdline = vm.qga.sh("cat /proc/cmdline")[1].split()
        check("the kernel reboots on a panic, dracut on an emergency, systemd on a crash (panic=10 rd.emergency=reboot rd.shell=0 systemd.crash_reboot=1)",
              all(a in cmdline for a in ("panic=10", "rd.emergency=reboot", "rd.shell=0", "systemd.crash_reboot=1")), " ".join(cmdline))
        wd = vm.qga.sh("systemctl show -p RuntimeWatchdogUSec --value; cat /sys/class/watchdog/watchdog0/identity "
                       "/sys/class/watchdog/watchdog0/state 2>&1")[1].split("\n")
        check("systemd drives the hardware watchdog (RuntimeWatchdogSec=30s, i6300esb active)",
              len(wd) >= 3 and wd[0].strip() == "30s" and "i6300ESB" in wd[1] and wd[2].strip() == "active", str(wd))

        # An /etc edit before the install; the packages arrive by upload (no network in the VM).
        vm.qga.sh("echo 'edited before the install' > /etc/apt-layer-vm-edit")
        digests = [vm.upload(f"{args.debs}/{name}") for name in sorted(os.listdir(args.debs))
                   if re.match(r"fixture-(lib|app|user)-1\.0\.deb$", name)]
        if not check("fixture packages uploaded", len(digests) == 3 and all(digests), str(digests)):
            raise Abort()
        # Layered and applied live in one transaction (issue 25): the agent's helper runs as a
        # transient unit in the host's mount namespace (the agent's own /usr, /etc and /var/tmp are
        # sandboxed), so the overlay and the packages are there for everyone at once.
        code, t = vm.transaction("install", {"packages": digests, "applyLive": True})
        if not check("install --apply-live through the API succeeded", t.get("state") == "succeeded",
                     f"{t.get('error')}; the helper's unit: " + vm.qga.sh("journalctl -b --no-pager -o cat -u 'apt-layer-live-*' | tail -n 15")[1]):
            raise Abort()
        check("applied live: the program runs before any reboot", vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0")
        vm.measure_footprint("after a layering transaction (install --apply-live)")
        live = vm.qga.sh("findmnt -n -o FSTYPE,OPTIONS /usr | tail -n1; touch /usr/apt-layer-probe 2>&1; "
                         "ostree admin status | grep -i unlocked; getent passwd fixtured >/dev/null && echo account")[1]
        check("/usr is a read-only transient overlay (ostree: Unlocked: transient), the script's account exists",
              live.startswith("overlay") and "ro," in live.split("\n")[0] and "Read-only file system" in live
              and "Unlocked: transient" in live and "account" in live, live[:600])
        _, doc = vm.api("GET", "/v1/status")
        check("status shows the booted deployment's live packages",
              (booted(doc).get("live") or {}).get("addedPackages", []) == ["fixture-app 1.0", "fixture-lib 1.0", "fixture-user 1.0"],
              json.dumps(booted(doc).get("live"))[:300])
        # The overlay is the host's, not the agent's: a restart of the agent (its namespace and
        # private /var/tmp go) keeps it, and the restarted agent reports it.
        vm.qga.sh("systemctl restart apt-layerd")
        vm.wait_api()
        _, doc = vm.api("GET", "/v1/status")
        check("after an agent restart the live packages are still there and still reported",
              vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0" and (booted(doc).get("live") or {}).get("phase") == "done",
              json.dumps(booted(doc).get("live"))[:300])
        # A second live apply in the same boot writes into the same overlay; its package's service
        # (enabled by its postinst) is started: systemd reloaded, then started.
        svc = vm.upload(f"{args.debs}/fixture-service-1.0.deb")
        code, t = vm.transaction("install", {"packages": [svc], "applyLive": True, "startServices": True})
        check("a second install --apply-live --start in the same boot", t.get("state") == "succeeded", str(t)[:400])
        out = vm.qga.sh("systemctl is-active fixture-live; cat /run/fixture-live; fixture-app; ls -d /var/tmp/ostree-unlock-ovl.* | wc -l")[1]
        check("its service runs (daemon-reload, start), the first apply's packages are still there, one overlay",
              out.split() == ["active", "started", "fixture-app", "1.0", "1"], out)
        _, doc = vm.api("GET", "/v1/status")
        live = booted(doc).get("live") or {}
        check("status: four packages live, the service started", len(live.get("addedPackages", [])) == 4
              and live.get("started") == ["fixture-live.service"] and live.get("notStarted") == [], json.dumps(live)[:400])
        staged = [d for d in doc["deployments"] if d.get("staged")]
        check("the new deployment is staged (finalized at shutdown)", len(staged) == 1 and booted(doc).get("checksum") == first.get("checksum"),
              str([(d.get("checksum", "")[:8], d.get("booted"), d.get("staged")) for d in doc["deployments"]]))
        out = vm.qga.sh("apt-layer status")[1]
        check("apt-layer status shows it pending", "staged" in out.lower() or "pending" in out.lower(), out[:300])

        armed = doc.get("bootCounter") or {}
        check("staging armed the boot counter for the staged deployment (boot-tries: 2)",
              staged and armed.get("state") == "armed" and armed.get("triesLeft") == 2
              and armed.get("deployment") == f"{staged[0].get('checksum')}.{staged[0].get('serial')}", json.dumps(armed))
        boot_id, state = vm.reboot(boot_id, "reboot into the staged deployment")
        vm.wait_api()
        counter = vm.counter_when(lambda c: c.get("state") == "unarmed", 120)
        trial = vm.qga.sh("journalctl -b -u apt-layerd --no-pager -o cat | grep 'counted trial'")[1]
        left, boots, _ = vm.trial_count(2)
        check("GRUB counted the boot down (2 → 1 per boot it made) and the agent marked it good after multi-user.target",
              f"({left} tries left)" in trial and counter.get("state") == "unarmed"
              and vm.qga.sh("grep -c apt_layer_ /boot/grub/grubenv")[1].strip() == "0", f"{boots or 'no'} GRUB boot line(s); {trial.strip()[:200]}; {json.dumps(counter)}")
        _, doc = vm.api("GET", "/v1/status")
        now = booted(doc)
        check("after the reboot the new deployment is booted", now.get("checksum") == staged[0].get("checksum") if staged else False,
              f"booted {now.get('checksum', '')[:12]}")
        check("/proc/cmdline's ostree= names it", now.get("checksum", "-") in cmdline_deployment(vm), cmdline_deployment(vm))
        check("the layered program runs", vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0")
        check("the service the live apply started is enabled in the booted deployment and ran at boot",
              vm.qga.sh("systemctl is-active fixture-live; cat /run/fixture-live")[1].split() == ["active", "started"])
        left = vm.qga.sh("ls -d /var/tmp/ostree-unlock-ovl.* 2>/dev/null | wc -l; findmnt -n -o FSTYPE /usr")[1].split()
        check("nothing live after the reboot: no overlay directory, /usr not an overlay, no live state",
              left[:1] == ["0"] and "overlay" not in left[1:] and "live" not in booted(doc), str(left))
        check("the /etc edit made before the install survived", vm.qga.sh("cat /etc/apt-layer-vm-edit")[1].strip() == "edited before the install")
        check("the system user the maintainer script added exists", vm.qga.sh("getent passwd fixtured")[0] == 0)

        # Rollback through the API, then reboot into the previous deployment.
        code, t = vm.transaction("rollback", {})
        check("rollback through the API", t.get("state") == "succeeded", str(t)[:300])
        boot_id, state = vm.reboot(boot_id, "reboot after rollback")
        vm.wait_api()
        _, doc = vm.api("GET", "/v1/status")
        check("after rollback + reboot the previous deployment is booted", booted(doc).get("checksum") == first.get("checksum"),
              f"booted {booted(doc).get('checksum', '')[:12]}")
        check("the layered program is gone there", vm.qga.sh("command -v fixture-app")[0] != 0)

        # Finalization locked: a reboot keeps the old deployment; finalize + reboot applies it.
        code, t = vm.transaction("install", {"packages": digests, "lockFinalization": True})
        check("install with lock-finalization", t.get("state") == "succeeded", str(t)[:300])
        _, doc = vm.api("GET", "/v1/status")
        locked = [d for d in doc["deployments"] if d.get("staged")]
        boot_id, state = vm.reboot(boot_id, "reboot with finalization locked")
        vm.wait_api()
        _, doc = vm.api("GET", "/v1/status")
        check("with finalization locked a reboot keeps the old deployment", booted(doc).get("checksum") == first.get("checksum"),
              f"booted {booted(doc).get('checksum', '')[:12]}")
        code, t = vm.transaction("install", {"packages": digests, "lockFinalization": True})
        code, t = vm.transaction("finalize", {})
        check("finalize through the API", t.get("state") == "succeeded", str(t)[:300])
        boot_id, state = vm.reboot(boot_id, "reboot after finalize")
        vm.wait_api()
        _, doc = vm.api("GET", "/v1/status")
        check("finalize + reboot boots the new deployment", booted(doc).get("checksum") != first.get("checksum")
              and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0", f"booted {booted(doc).get('checksum', '')[:12]}")

        # Releases that cannot boot fall back by themselves, with no input on the console (GRUB
        # counts both tries down, then boots the previous deployment; the agent makes it the
        # default again and status says the boot fell back). CI sees a panicking release fall back
        # in the fleet mission (vm_fleet.py: one try, denylisted by the driver); --all adds, for
        # an operator's own change without a fleet:
        # - the kernel panics (rdinit= names no program: the kernel finds no init in the initramfs,
        #   cannot mount root=UUID= itself, panics, and panic=10 reboots);
        # - init is missing (init= names no program: systemd in the initramfs refuses to switch
        #   root, dracut's emergency handler reboots, rd.emergency=reboot).
        if args.all:
            boot_id = fall_back(vm, boot_id, "a release whose kernel panics", "rdinit=/apt-layer-no-such-init", "Kernel panic - not syncing")
            boot_id = fall_back(vm, boot_id, "a release whose init is missing", "init=/usr/lib/apt-layer-no-such-init", None)

        # SIGKILL mid-transaction: systemd restarts the agent; the transaction is interrupted.
        slow = vm.upload(f"{args.debs}/fixture-slow-1.0.deb")
        status, started = vm.api("POST", "/v1/transactions", {"operation": "install", "arguments": {"packages": [slow]}})
        tid = started.get("id") if isinstance(started, dict) else None
        for _ in range(120):
            # (minbase has no procps: /proc read directly)
            if vm.qga.sh("for c in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $c 2>/dev/null; echo; done | grep -q '[d]pkg.*[-]-configure'")[0] == 0:
                break
            time.sleep(1)
        restarts = int(p.get("NRestarts", "0") or 0)
        vm.qga.sh("kill -9 $(systemctl show -p MainPID --value apt-layerd)")
        again = None
        for _ in range(60):
            time.sleep(2)
            props = dict(l.split("=", 1) for l in vm.qga.sh("systemctl show apt-layerd -p ActiveState -p NRestarts")[1].split("\n") if "=" in l)
            if props.get("ActiveState") == "active" and int(props.get("NRestarts", "0") or 0) > restarts:
                again = props
                break
        check("systemd restarted the killed agent", again is not None, str(again))
        vm.wait_api()
        _, t = vm.api("GET", f"/v1/transactions/{tid}") if tid else (0, {})
        check("the killed transaction is journaled as interrupted", t.get("state") == "interrupted", str(t)[:300])
        code, t = vm.transaction("kargs", {"append": ["apt_layer_vm=1"]})
        check("the next transaction succeeds", t.get("state") == "succeeded", str(t)[:300])
        # A /boot without room is refused before anything is built or staged (the space preflight):
        # the real ext4 boot partition filled to its last quarter MiB, as the agent sees it.
        avail = vm.qga.sh("df --output=avail -B1 /boot | tail -1")[1].strip()
        vm.qga.sh(f"fallocate -l {max(0, int(avail or 0) - 262144)} /boot/apt-layer-vm-filler")
        _, before = vm.api("GET", "/v1/status")
        code, t = vm.transaction("install", {"packages": [slow]})
        check("a full /boot: the install fails in one line before staging",
              t.get("state") == "failed" and t.get("failure") == "out-of-space"
              and "not enough space on /boot: need 1 MiB, have 0 MiB" in (t.get("error") or ""),
              str(t)[:300])
        _, after = vm.api("GET", "/v1/status")
        check("a full /boot: the deployments are as they were",
              [d.get("checksum") for d in after.get("deployments", [])] == [d.get("checksum") for d in before.get("deployments", [])],
              str(after)[:300])
        vm.qga.sh("rm -f /boot/apt-layer-vm-filler")
        fields = vm.qga.sh("journalctl -u apt-layerd -o json --no-pager | grep -c APT_LAYER_TXN; "
                           "journalctl -u apt-layerd -o json --no-pager | grep -c APT_LAYER_OPERATION")[1].split()
        check("journald carries APT_LAYER_TXN and APT_LAYER_OPERATION", len(fields) == 2 and all(int(x) > 0 for x in fields), str(fields))
        code, out = vm.qga.sh("systemd-analyze security apt-layerd.service --no-pager 2>&1 | tail -1")
        score = re.search(r"exposure level for apt-layerd.service: ([0-9.]+) (\w+)", out)
        check("systemd-analyze security rates the unit", score is not None, out.strip())
        if score:
            print(f"EXPOSURE {score.group(1)} {score.group(2)}")
    fleet(vm, args, boot_id)


def fleet(vm, args, boot_id):
    """The fleet mission under the packaged unit (Tests/Fixtures/system/vm_fleet.py)."""
    if not args.repo:
        check("fleet mission: --repo and --ref given", False, "no repository to publish releases from")
        return
    mission = args.mission
    try:
        mission.run(boot_id)
    finally:
        mission.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--debs", required=True)
    ap.add_argument("--work")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--repo", help="the repository the image was composed from (the fleet mission publishes releases from it)")
    ap.add_argument("--ref", default="debian/bookworm/x86_64/vm")
    ap.add_argument("--only-fleet", action="store_true", help="boot, layer the operator's packages, run only the fleet mission")
    ap.add_argument("--all", action="store_true", help="also the scenarios CI leaves out for time (fall-backs without a fleet)")
    ap.add_argument("--only-secure-boot", action="store_true", help="run only the Secure Boot scenario (needs --uefi-image)")
    ap.add_argument("--distro", choices=["trixie", "noble"],
                    help="run only the distribution scenario (vm_distro.py) on an image of that suite, under Secure Boot")
    ap.add_argument("--uefi-image", help="a pristine copy of the image: booted again under OVMF with Secure Boot enforced (vm_uefi.py)")
    sys.exit(run(ap.parse_args()))


if __name__ == "__main__":
    main()
