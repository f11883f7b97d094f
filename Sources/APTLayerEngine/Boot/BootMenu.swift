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

    /// What follows the entries: the counted default, and the previous entry as GRUB's own
    /// fallback when the default cannot even be loaded (a missing kernel).
    public static let selection = """
        set default=${apt_layer_default}
        if [ "${apt_layer_default}" = 0 ]; then set fallback=1; fi

        """
}
