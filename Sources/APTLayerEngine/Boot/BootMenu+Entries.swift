import APTLayerModel
import Foundation

/// The GRUB menu rendered from libostree's boot loader entries (BLS, `/boot/loader/entries`) for
/// firmware whose GRUB cannot read libostree's `syslinux.cfg`: Debian's signed `grubx64.efi`
/// (Secure Boot) has no `syslinuxcfg` module and no `blscfg`. The static `grub.cfg` sources this
/// file on EFI (docs/boot-counting.md, docs/image.md); apt-layer rewrites it atomically after
/// every change of the entries: its own deployment writes, the agent's start, and
/// `apt-layer boot-menu` run by `apt-layer-boot-menu.service` right after
/// `ostree-finalize-staged.service` at shutdown.
extension BootMenu {
    /// The rendered menu's path in a sysroot's `/boot`.
    public static let renderedMenu = "grub/ostree-menu.cfg"

    /// One BLS entry.
    struct Entry: Equatable {
        var title: String
        var version: String
        var linux: String
        var initrd: String?
        var options: String
    }

    /// The entries of `bootDirectory/loader/entries`, newest first (libostree's order: the
    /// `version` key descending), each parsed from `key value` lines.
    static func entries(bootDirectory: String) throws -> [Entry] {
        let directory = "\(bootDirectory)/loader/entries"
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw EngineError.wrap(error, "read \(directory)")
        }
        var entries: [Entry] = []
        for name in names where name.hasSuffix(".conf") {
            guard let text = FileTree.read("\(directory)/\(name)") else { throw EngineError(.system, "cannot read \(directory)/\(name)") }
            var keys: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                guard parts.count == 2, keys[String(parts[0])] == nil else { continue }
                keys[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
            }
            guard let linux = keys["linux"] else { throw EngineError(.system, "\(directory)/\(name) names no kernel (linux)") }
            entries.append(
                Entry(
                    title: keys["title"] ?? name, version: keys["version"] ?? "0", linux: linux, initrd: keys["initrd"],
                    options: keys["options"] ?? ""))
        }
        return entries.sorted { $0.version.compare($1.version, options: .numeric) == .orderedDescending }
    }

    /// The menu: one `menuentry` per entry, in boot order (entry 0 is the default, 1 the previous).
    static func render(_ entries: [Entry]) -> String {
        var out = "# Written by apt-layer from /loader/entries (libostree's boot loader entries); do not edit.\n"
        for entry in entries {
            out += "menuentry \(quote(entry.title)) {\n"
            out += "  linux \(quote(entry.linux))\(entry.options.split(separator: " ").map { " " + quote(String($0)) }.joined())\n"
            if let initrd = entry.initrd { out += "  initrd \(quote(initrd))\n" }
            out += "}\n"
        }
        return out
    }

    /// A word GRUB's parser passes through unchanged: bare when it has nothing GRUB treats
    /// specially, else single-quoted (a single quote inside as `'\''`).
    static func quote(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "=,._/:+-@%".contains($0)) }
        return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Rewrites `bootDirectory/grub/ostree-menu.cfg` from the entries when it exists (images made
    /// for EFI have one) or `create` is set; a power cut leaves the old menu or the new one. True
    /// when the file changed.
    @discardableResult
    public static func refresh(bootDirectory: String, create: Bool = false) throws -> Bool {
        let path = "\(bootDirectory)/\(renderedMenu)"
        guard create || FileTree.exists(path) else { return false }
        let text = render(try entries(bootDirectory: bootDirectory))
        if FileTree.read(path) == text { return false }
        try FileTree.replaceDurably(path, Array(text.utf8))
        return true
    }
}
