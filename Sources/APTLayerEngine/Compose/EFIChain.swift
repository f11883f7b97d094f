import APTLayerModel
import Foundation
import Glibc

/// The signed EFI boot chain a base carries (its distribution's shim, GRUB and MokManager), and
/// where `compose image` puts each on the EFI system partition.
///
/// A distribution's signed GRUB has its prefix built in: `/EFI/debian` for Debian's,
/// `/EFI/ubuntu` for Ubuntu's. The stub `grub.cfg` goes there; shim goes there and to the
/// removable-media path `EFI/BOOT/BOOTX64.EFI`, which firmware boots without a boot entry.
struct EFIChain: Equatable {
    /// The directory under `EFI/` named by the distribution's signed GRUB (its os-release `ID`).
    var vendor: String
    /// Deployment-relative paths of shim, GRUB and MokManager.
    var shim: String
    var grub: String
    var mokManager: String

    /// Where each distribution's packages put the signed programs (shim-signed and
    /// grub-efi-amd64-signed on both; Ubuntu names shim `.signed.latest` and MokManager `mmx64.efi`).
    static let candidates: (shim: [String], grub: [String], mokManager: [String]) = (
        ["usr/lib/shim/shimx64.efi.signed", "usr/lib/shim/shimx64.efi.signed.latest"],
        ["usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"],
        ["usr/lib/shim/mmx64.efi.signed", "usr/lib/shim/mmx64.efi"]
    )

    /// The vendors whose signed GRUB compose image knows the prefix of.
    static let vendors = ["debian", "ubuntu"]

    /// Finds the chain in `deployment`, or throws one line naming what is missing.
    static func find(in deployment: String) throws -> EFIChain {
        let id = OSRelease.load(root: deployment)?.fields["ID"] ?? ""
        guard vendors.contains(id) else {
            throw EngineError(.invalidArgument, "the base's os-release ID is \"\(id)\": UEFI images need Debian's or Ubuntu's signed shim and GRUB")
        }
        func first(_ paths: [String]) throws -> String {
            guard let found = paths.lazy.compactMap({ resolved($0, in: deployment) }).first else {
                throw EngineError(
                    .invalidArgument,
                    "the base has no /\(paths[0]): UEFI images need the distribution's signed shim and GRUB in it (packages shim-signed, grub-efi-amd64-signed); --firmware bios does without"
                )
            }
            return found
        }
        return EFIChain(vendor: id, shim: try first(candidates.shim), grub: try first(candidates.grub), mokManager: try first(candidates.mokManager))
    }

    /// `path` with its symlinks followed inside `root` (Ubuntu's `shimx64.efi.signed` is an
    /// alternative: `/etc/alternatives/…` → `/usr/lib/shim/shimx64.efi.signed.latest`), as a path
    /// relative to `root`; nil unless it ends at a regular file within a few hops.
    static func resolved(_ path: String, in root: String) -> String? {
        var current = path
        for _ in 0..<8 {
            guard let info = FileTree.lstatInfo("\(root)/\(current)") else { return nil }
            switch info.st_mode & S_IFMT {
            case S_IFREG: return current
            case S_IFLNK:
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(current)") else { return nil }
                let joined = target.hasPrefix("/") ? target : "\((current as NSString).deletingLastPathComponent)/\(target)"
                current = URL(fileURLWithPath: "/" + joined).standardizedFileURL.path.dropFirst().description
            default: return nil
            }
        }
        return nil
    }

    /// Each program and the ESP paths it is copied to.
    var placements: [(source: String, targets: [String])] {
        [
            (shim, ["EFI/BOOT/BOOTX64.EFI", "EFI/\(vendor)/shimx64.efi"]),
            (grub, ["EFI/BOOT/grubx64.efi", "EFI/\(vendor)/grubx64.efi"]),
            (mokManager, ["EFI/BOOT/mmx64.efi", "EFI/\(vendor)/mmx64.efi"]),
        ]
    }
}
