import APTLayerModel
import Foundation

/// Kernel modules a layering build adds, on a host whose firmware enforces Secure Boot: the kernel
/// (locked down by Secure Boot) loads only modules signed by a key it trusts, so a layered package
/// that brings an unsigned module, or builds modules with DKMS, would install a driver that can
/// never load. It is refused at layering time, with nothing changed, instead of failing at boot.
///
/// What is checked: a module is signed when it ends with the kernel's signature marker (after
/// decompression for `.ko.xz`, `.ko.zst`, `.ko.gz`); whether the key that signed it is trusted is
/// the kernel's business (Debian's modules are signed by Debian's key). A package that depends on
/// `dkms` is refused whatever it ships: DKMS builds its modules on the host, unsigned or signed by
/// a local key the firmware does not trust until someone enrolls it at the console.
enum SecureBootModules {
    /// The EFI global variable `SecureBoot` (4 bytes of attributes, then 1 when enforced).
    static let variable = "SecureBoot-8be4df61-93ca-11d2-aa0d-e39a4b5d9d2f"
    /// What signed modules end with (`scripts/sign-file` in the kernel's sources).
    static let signatureMarker = Array("~Module signature appended~\n".utf8)

    /// Whether the firmware that booted this machine enforces Secure Boot (`efivars`: efivarfs).
    static func isEnforced(efivars: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: "\(efivars)/\(variable)"), data.count >= 5 else { return false }
        return data[data.startIndex + 4] == 1
    }

    /// The refusal for what the packages installed in `root` over `base` bring, or nil. `database`
    /// is dpkg's database directory relative to `root`; its status file is read and parsed once.
    static func refusal(root: String, database: String, base: [Package], token: CancellationToken) throws -> EngineError? {
        let before = Set(base)
        let added = Package.installedStanzas(statusFile: FileTree.read("\(root)/\(database)/status") ?? "")
            .filter { !before.contains($0.package) }.sorted { $0.package < $1.package }
        for (package, fields) in added {
            let name = package.name
            if dependsOnDKMS([fields["Depends"], fields["Pre-Depends"]].compactMap { $0 }) {
                return EngineError(
                    .refused,
                    "refused: \(name) builds kernel modules with DKMS, which this host's Secure Boot will not load (no key the firmware trusts signs them); layer it on a host without Secure Boot, or sign them with a key enrolled with mokutil"
                )
            }
            for module in modules(of: name, root: root, database: database) where try !isSigned("\(root)\(module)", token: token) {
                return EngineError(
                    .refused,
                    "refused: \(name) brings the unsigned kernel module \(module), which this host's Secure Boot will not load; use a signed build of it, or a host without Secure Boot"
                )
            }
        }
        return nil
    }

    /// Whether relation fields (`Depends:`, `Pre-Depends:` values) name `dkms`, with or without a
    /// version or an architecture qualifier, alone or among alternatives.
    static func dependsOnDKMS(_ relations: [Substring]) -> Bool {
        relations.contains { field in
            field.split { $0 == "," || $0 == "|" }.contains { relation in
                relation.split(separator: " ").first.map { $0.split(separator: ":").first == "dkms" } ?? false
            }
        }
    }

    /// The kernel modules (`…/lib/modules/….ko[.xz|.zst|.gz]`) in package `name`'s file list.
    static func modules(of name: String, root: String, database: String) -> [String] {
        let info = "\(root)/\(database)/info"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: info)) ?? []).filter {
            $0 == "\(name).list" || $0.hasPrefix("\(name):") && $0.hasSuffix(".list")
        }
        return names.flatMap { (FileTree.read("\(info)/\($0)") ?? "").split(separator: "\n").map(String.init) }.filter { path in
            path.contains("/lib/modules/") && [".ko", ".ko.xz", ".ko.zst", ".ko.gz"].contains { path.hasSuffix($0) }
        }
    }

    /// Whether the module file at `path` carries a signature (decompressed first when compressed;
    /// a module that does not decompress counts as unsigned).
    static func isSigned(_ path: String, token: CancellationToken) throws -> Bool {
        let tool: String? = path.hasSuffix(".xz") ? "xz" : path.hasSuffix(".zst") ? "zstd" : path.hasSuffix(".gz") ? "gzip" : nil
        guard let tool else {
            guard let data = FileManager.default.contents(atPath: path) else { throw EngineError(.system, "cannot read \(path)") }
            return Array(data.suffix(signatureMarker.count)) == signatureMarker
        }
        let result = try Subprocess.run(
            ["sh", "-c", "\(tool) -dc -- \"$1\" | tail -c \(signatureMarker.count)", "sh", path], token: token)
        return Array(result.output.utf8) == signatureMarker
    }
}
