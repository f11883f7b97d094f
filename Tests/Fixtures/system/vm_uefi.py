"""The VM tier's Secure Boot scenario (issue 21): a pristine copy of the same hybrid image that the
BIOS scenario boots, booted under Debian's OVMF with Microsoft's keys enrolled (Secure Boot
enforced) through Debian's signed chain: shim (EFI/BOOT/BOOTX64.EFI) → signed GRUB (its stub
EFI/debian/grub.cfg finds /boot by UUID) → /boot/grub/grub.cfg, which counts boots and sources the
menu apt-layer renders from libostree's boot loader entries → Debian's signed kernel.

Checks: the firmware enforces Secure Boot (SecureBoot efivar = 1) and the kernel is locked down;
an install through the API is staged and armed; at shutdown apt-layer-boot-menu.service rewrites
the menu right after ostree-finalize-staged (ordered in the journal; the rewrite timed in the guest), the reboot boots the new
deployment, signed GRUB counted the boot down in the grubenv (save_env on ext4), and the agent
marks it good.
"""
import json, os, re, time

SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def booted(doc):
    return next((d for d in doc.get("deployments", []) if d.get("booted")), {})


def counter_when(vm, ready, timeout):
    deadline, counter = time.time() + timeout, {}
    while time.time() < deadline:
        try:
            _, doc = vm.api("GET", "/v1/status", timeout=20)
            counter = doc.get("bootCounter") or {}
            if ready(counter):
                break
        except OSError:
            pass
        time.sleep(2)
    return counter


def stamp(journal, needle):
    """The monotonic time of the first `journalctl -o short-monotonic` line containing `needle`."""
    for line in journal.splitlines():
        m = re.match(r"\[\s*([0-9.]+)\]", line)
        if m and needle in line:
            return float(m.group(1))
    return None


def secure_boot(vm, args, check):
    vm.start()
    t0 = time.time()
    boot_id, state = vm.wait_boot(timeout=900)
    vm.boots.append(("Secure Boot: first boot (OVMF, shim, signed GRUB; power-on to settled)", time.time() - t0))
    check("Secure Boot: the hybrid image boots under OVMF through shim and signed GRUB", state in ("running", "degraded"), state)
    sb = vm.qga.sh(f"od -An -t u1 {SECURE_BOOT_VAR}")[1].split()
    check("Secure Boot: the firmware enforces it (SecureBoot efivar = 1)", sb[-1:] == ["1"], " ".join(sb))
    lockdown = vm.qga.sh("cat /sys/kernel/security/lockdown")[1].strip()
    check("Secure Boot: the kernel is locked down", "[integrity]" in lockdown or "[confidentiality]" in lockdown, lockdown)
    menu = vm.qga.sh("cat /boot/grub/ostree-menu.cfg")[1]
    check("Secure Boot: apt-layer-boot-menu.service is active and the menu lists the deployment",
          vm.qga.sh("systemctl is-active apt-layer-boot-menu.service")[1].strip() == "active" and menu.count("menuentry ") >= 1,
          menu[:300])
    if vm.wait_api() is None:
        check("Secure Boot: the API answers", False)
        return
    digests = [vm.upload(f"{args.debs}/{name}") for name in sorted(os.listdir(args.debs))
               if re.match(r"fixture-(lib|app)-1\.0\.deb$", name)]
    _, t = vm.transaction("install", {"packages": digests})
    _, doc = vm.api("GET", "/v1/status")
    staged = next((d for d in doc.get("deployments", []) if d.get("staged")), {})
    armed = doc.get("bootCounter") or {}
    if not check("Secure Boot: an install is staged and the boot counter armed for it",
                 t.get("state") == "succeeded" and armed.get("deployment") == f"{staged.get('checksum')}.{staged.get('serial')}",
                 f"{str(t)[:200]} {json.dumps(armed)}"):
        return
    boot_id, state = vm.reboot(boot_id, "Secure Boot: reboot into the staged deployment (finalize + menu at shutdown)")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    check("Secure Boot: the reboot boots the staged deployment (menu rewritten after finalization)",
          booted(doc).get("checksum") == staged.get("checksum") and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0",
          f"booted {booted(doc).get('id', '')[:24]}")
    journal = vm.qga.sh("journalctl -b -1 -o short-monotonic --no-pager -u apt-layer-boot-menu.service -u ostree-finalize-staged.service")[1]
    finalized = stamp(journal, "ostree-finalize-staged.service: Deactivated")
    stopping = stamp(journal, "Stopping apt-layer-boot-menu.service")
    # (Its own end is logged after journald stopped writing to disk; the boot above, into the
    # staged deployment, is what shows the menu was written: the old menu's default was the old one.)
    check("Secure Boot: at shutdown the menu is rewritten after ostree-finalize-staged finished",
          None not in (finalized, stopping) and finalized <= stopping, journal[-700:])
    # What the unit adds to shutdown: one `apt-layer boot-menu` that rewrites the menu (made stale
    # by a comment line first, so that it writes), process start included.
    out = vm.qga.sh("echo '# stale' >> /boot/grub/ostree-menu.cfg; s=$(date +%s%N); apt-layer boot-menu; e=$(date +%s%N); "
                    "echo $(( (e - s) / 1000000 )); grep -c stale /boot/grub/ostree-menu.cfg")[1].split()
    check("Secure Boot: apt-layer boot-menu rewrites a stale menu", out[:3] == ["Boot", "menu", "rewritten."] and out[-1:] == ["0"], " ".join(out))
    if len(out) >= 2 and out[-2].isdigit():
        print(f"MENU-REWRITE {out[-2]} ms (apt-layer boot-menu, process included, TCG)")
    counter = counter_when(vm, lambda c: c.get("state") == "unarmed", 120)
    trial = vm.qga.sh("journalctl -b -u apt-layerd --no-pager -o cat | grep 'counted trial'")[1]
    check("Secure Boot: signed GRUB counted the boot down in /boot's grubenv and the agent marked it good",
          "(1 tries left)" in trial and counter.get("state") == "unarmed", f"{trial.strip()[:200]}; {json.dumps(counter)}")
    if args.all:
        stale_menu(vm, args, check, boot_id)


def stale_menu(vm, args, check, boot_id):
    """What a power cut between libostree's finalization and the menu's rewrite at shutdown leaves
    (the window is milliseconds wide, so it is made deterministic): the menu file is made immutable,
    so the unit's rewrite after ostree-finalize-staged fails. The next boot reads the old menu, whose
    default entry is the deployment that was booted, and must come up on it; once the menu can be
    written again, `apt-layer boot-menu` catches up and the next reboot boots the new deployment."""
    _, doc = vm.api("GET", "/v1/status")
    old = booted(doc)
    _, t = vm.transaction("kargs", {"append": ["apt_layer_stale_menu=1"]})
    _, doc = vm.api("GET", "/v1/status")
    staged = next((d for d in doc.get("deployments", []) if d.get("staged")), {})
    if not check("stale menu: a change is staged", t.get("state") == "succeeded" and staged, str(t)[:200]):
        return boot_id
    vm.qga.sh("chattr +i /boot/grub/ostree-menu.cfg")
    boot_id, state = vm.reboot(boot_id, "Secure Boot: reboot with the menu's rewrite failing at shutdown")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    now = booted(doc)
    stale = vm.qga.sh("grep -c apt_layer_stale_menu /boot/grub/ostree-menu.cfg")[1].strip()
    check("stale menu: the rewrite failed at shutdown, and the old menu booted the deployment that was booted",
          now.get("id") == old.get("id") and stale == "0", f"booted {now.get('id', '')[:24]}, was {old.get('id', '')[:24]}; new entry in the menu: {stale}")
    out = vm.qga.sh("chattr -i /boot/grub/ostree-menu.cfg && apt-layer boot-menu && head -3 /boot/grub/ostree-menu.cfg")[1]
    boot_id, state = vm.reboot(boot_id, "Secure Boot: reboot after the menu caught up")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    now = booted(doc)
    check("stale menu: once written again the menu boots the new deployment",
          now.get("checksum") == staged.get("checksum") and "apt_layer_stale_menu=1" in vm.qga.sh("cat /proc/cmdline")[1],
          f"booted {now.get('id', '')[:24]}; {out[:200]}")
    return boot_id
