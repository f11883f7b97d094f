"""The VM tier's Secure Boot scenario (issue 21): a pristine copy of the same hybrid image that the
BIOS scenario boots, booted under Debian's OVMF with Microsoft's keys enrolled (Secure Boot
enforced) through Debian's signed chain: shim (EFI/BOOT/BOOTX64.EFI) → signed GRUB (its stub
EFI/debian/grub.cfg finds /boot by UUID) → /boot/grub/grub.cfg, which counts boots and reads
libostree's /loader/syslinux.cfg as GRUB script (signed GRUB has no syslinuxcfg module) → Debian's
signed kernel.

Checks: the firmware enforces Secure Boot (SecureBoot efivar = 1) and the kernel is locked down;
an install through the API is staged and armed; the reboot (libostree finalizes at shutdown and
swaps its syslinux.cfg with the entries) boots the new deployment; signed GRUB counted the boot
down in the grubenv (save_env on ext4) and the agent marked it good. With --all, a power cut (qemu
killed) during the shutdown that finalizes a staged deployment leaves a host that comes up on a
whole deployment with no input.
"""
import json, os, random, re, time

SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def booted(doc):
    return next((d for d in doc.get("deployments", []) if d.get("booted")), {})


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
    mark = len(vm.serial_text())
    boot_id, state = vm.reboot(boot_id, "Secure Boot: reboot into the staged deployment")
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    serial = vm.serial_text()[mark:]
    booted_entries = re.findall(r"Booting `[^']*\(ostree:(\d+)\)'", serial)
    check("Secure Boot: signed GRUB read both of libostree's entries and booted the staged deployment (entry 0, each time it booted)",
          booted(doc).get("checksum") == staged.get("checksum") and vm.qga.sh("fixture-app")[1].strip() == "fixture-app 1.0"
          and booted_entries and set(booted_entries) == {"0"} and "(ostree:1)" in serial,
          f"booted {booted(doc).get('id', '')[:24]}, GRUB booted entries {booted_entries}")
    counter = vm.counter_when(lambda c: c.get("state") == "unarmed", 120)
    trial = vm.qga.sh("journalctl -b -u apt-layerd --no-pager -o cat | grep 'counted trial'")[1]
    left, boots, _ = vm.trial_count(2)
    check("Secure Boot: signed GRUB counted the boot down in /boot's grubenv and the agent marked it good",
          f"({left} tries left)" in trial and counter.get("state") == "unarmed",
          f"{boots or 'no'} GRUB boot line(s); {trial.strip()[:200]}; {json.dumps(counter)}")
    if args.all:
        # Anywhere from before libostree's finalization to after it (it runs a few seconds into
        # the shutdown under TCG); the run prints where the cut fell.
        power_cut(vm, args, check, boot_id, round(random.uniform(3, 12), 1))


def power_cut(vm, args, check, boot_id, delay):
    """Power cut during the shutdown that finalizes a staged deployment: qemu is killed `delay`
    seconds after `systemctl reboot` (libostree's finalization runs in those seconds under TCG),
    then started again. libostree swaps the entries and syslinux.cfg (the menu, on both firmwares)
    in one rename, so whatever the cut interrupted, the host must come up with no input, on the
    deployment that was booted (finalization not done) or on the staged one (done)."""
    _, doc = vm.api("GET", "/v1/status")
    old = booted(doc)
    _, t = vm.transaction("kargs", {"append": ["apt_layer_power_cut=1"]})
    _, doc = vm.api("GET", "/v1/status")
    staged = next((d for d in doc.get("deployments", []) if d.get("staged")), {})
    if not check("power cut: a change is staged", t.get("state") == "succeeded" and staged, str(t)[:200]):
        return boot_id
    vm.qga.fire("systemctl reboot")
    time.sleep(delay)
    vm.stop()
    t0 = time.time()
    vm.start()
    boot_id, state = vm.wait_boot(previous_boot_id=boot_id, timeout=900)
    vm.boots.append((f"Secure Boot: power cut {delay} s into the shutdown, then power-on to settled", time.time() - t0))
    vm.wait_api()
    _, doc = vm.api("GET", "/v1/status")
    now = booted(doc)
    outcome = "the staged deployment (finalized before the cut)" if now.get("checksum") == staged.get("checksum") else \
        "the deployment that was booted (finalization did not happen)" if now.get("id") == old.get("id") else "something else"
    check(f"power cut {delay} s into the shutdown: the host came up with no input on a whole deployment",
          state in ("running", "degraded") and outcome != "something else", f"{state}; booted {outcome}: {now.get('id', '')[:24]}")
    return boot_id
