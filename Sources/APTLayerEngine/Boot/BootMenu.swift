/// The GRUB script that counts boots down (docs/boot-counting.md). It runs before the menu's
/// entries are read, on every boot:
///
/// - `apt_layer_fell_back=1`: the previous entry (1) is the default, until the agent (or
///   `apt-layer boot-check`) has made the booted deployment the default and cleared the block;
/// - `apt_layer_tries=N` with N > 0: N−1 is saved and the default entry (0) boots;
/// - `apt_layer_tries=0`: every try is spent: `apt_layer_fell_back=1` is saved and entry 1 boots;
/// - anything else (no block, unreadable, unarmed): entry 0, as without counting.
///
/// GRUB 2.06 has no arithmetic, so the count-down is an `elif` chain over the digits 1–9
/// (``BootCounter`` arms with 1...9). `save_env` rewrites the block's sectors in place (a
/// 1024-byte file on ext4 or FAT, as `grub-editenv create` makes it); a block GRUB cannot
/// write leaves the count where it was and the entry boots (logged by the agent, never bricked).
public enum BootMenu {
    /// The counting script; `environment` is the block's path in GRUB's notation
    /// (`${prefix}/grubenv`, `($root)/grub/grubenv`).
    public static func countingScript(environment: String = "${prefix}/grubenv") -> String {
        let tries = BootCounter.triesVariable
        let fellBack = BootCounter.fellBackVariable
        var lines = [
            "# Boot counting (apt-layer, docs/boot-counting.md): a deployment that does not come up",
            "# within its tries falls back to the previous entry.",
            "set apt_layer_default=0",
            "set \(tries)=",
            "set \(fellBack)=",
            "if [ -f \(environment) ]; then load_env --file \(environment) \(tries) \(fellBack); fi",
            "if [ \"${\(fellBack)}\" = 1 ]; then",
            "  set apt_layer_default=1",
            "elif [ \"${\(tries)}\" = 0 ]; then",
            "  set apt_layer_default=1",
            "  set \(fellBack)=1",
            "  save_env --file \(environment) \(fellBack)",
        ]
        for n in 1...9 {
            lines += [
                "elif [ \"${\(tries)}\" = \(n) ]; then",
                "  set \(tries)=\(n - 1)",
                "  save_env --file \(environment) \(tries)",
            ]
        }
        lines.append("fi")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The entries, read from libostree's `/loader/syslinux.cfg` by GRUB script alone. libostree
    /// rewrites that file with every deployment change and swaps it atomically with the boot
    /// loader entries (`sysroot.bootloader=syslinux`), also at shutdown when
    /// `ostree-finalize-staged` writes a staged deployment, so the menu is never behind the
    /// deployments and nothing of apt-layer runs at shutdown. GRUB's `syslinuxcfg` module would
    /// read it on BIOS, but Debian's signed `grubx64.efi` has no such module (nor `blscfg`) and
    /// under Secure Boot loads none; so on both firmwares the file is `source`d as a GRUB script
    /// in which its keywords (`LABEL`, `KERNEL`, `INITRD`, `APPEND`, `DEVICETREE`, `DEFAULT`,
    /// `TIMEOUT`) are functions that collect each entry and add it as a `menuentry` (title, then
    /// the kernel, initramfs and arguments as the entry's positional parameters). Kernel arguments
    /// therefore must not contain `$ ; ' "` (as with `syslinuxcfg`).
    public static let entriesScript = entryFunctions + "source /loader/syslinux.cfg\napt_layer_flush\n"

    /// The functions of ``entriesScript``; `apt_layer_add_entry TITLE KERNEL INITRD ARGUMENTS`
    /// adds one entry.
    static let entryFunctions: String = {
        let lines = [
            "function TIMEOUT { true; }",
            "function DEFAULT { true; }",
            "function apt_layer_flush {",
            "  if [ -n \"${apt_layer_kernel}\" ]; then",
            "    apt_layer_add_entry \"${apt_layer_title}\" \"${apt_layer_kernel}\" \"${apt_layer_initrd}\" \"${apt_layer_append}\"",
            "  fi",
            "  set apt_layer_title=",
            "  set apt_layer_kernel=",
            "  set apt_layer_initrd=",
            "  set apt_layer_append=",
            "}",
            "function LABEL { apt_layer_flush; set apt_layer_title=\"$*\"; }",
            "function KERNEL { set apt_layer_kernel=\"$1\"; }",
            "function INITRD { set apt_layer_initrd=\"$1\"; }",
            "function DEVICETREE { true; }",
            "function APPEND { set apt_layer_append=\"$*\"; }",
            "function apt_layer_add_entry {",
            "  menuentry \"$1\" \"$2\" \"$3\" \"$4\" {",
            "    linux $2 $4",
            "    if [ -n \"$3\" ]; then initrd $3; fi",
            "  }",
            "}",
        ]
        return lines.joined(separator: "\n") + "\n"
    }()

    /// What follows the entries: the counted default, and the previous entry as GRUB's own
    /// fallback when the default cannot even be loaded (a missing kernel).
    public static let selection = """
        set default=${apt_layer_default}
        if [ "${apt_layer_default}" = 0 ]; then set fallback=1; fi

        """
}
