import APTLayerModel
import Foundation

/// The `/etc/apt` a build resolves against: the one the new deployment will have.
///
/// libostree gives a new deployment the new tree's `/usr/etc` with the admin's changes to the
/// merge deployment's `/etc` carried over (a three-way merge at deploy time). The build must see
/// the same sources and keys, or a rebase to another release (Debian 12 → 13) would resolve the
/// host's packages against the old release's archive. So, file by file under `apt/`:
/// - changed or added by the admin (differs from, or is missing in, the merge deployment's
///   `/usr/etc`): the admin's version, as libostree keeps it;
/// - deleted by the admin (in the merge deployment's `/usr/etc`, not in its `/etc`): absent;
/// - untouched: the new tree's version; one the new tree does not have is kept (a layered
///   package installed it, and it is installed again).
/// On a plain relayer (same base) this is the merge deployment's `/etc/apt` itself.
enum AptSources {
    /// Writes the merged `apt` directory to `destination` (which must not exist).
    /// - Parameters:
    ///   - mergeEtc: the merge deployment's `/etc`.
    ///   - mergeDefaults: the merge deployment's `/usr/etc` (its tree's pristine `/etc`).
    ///   - newTree: the new tree's `/etc` (the base being built on).
    static func merge(mergeEtc: String, mergeDefaults: String, newTree: String, into destination: String) throws {
        if FileTree.isDirectory("\(newTree)/apt") {
            try FileTree.copy("\(newTree)/apt", to: destination)
        } else {
            try FileTree.makeDirectory(destination)
        }
        let local = Set(FileTree.walk("\(mergeEtc)/apt"))
        let defaults = Set(FileTree.walk("\(mergeDefaults)/apt"))
        for path in local.sorted() {
            let mine = "\(mergeEtc)/apt/\(path)"
            if FileTree.isDirectory(mine) {
                try FileTree.makeDirectory("\(destination)/\(path)")
                continue
            }
            let pristine = "\(mergeDefaults)/apt/\(path)"
            let changed = !defaults.contains(path) || !sameContent(mine, pristine)
            if changed || !FileTree.exists("\(destination)/\(path)") {
                try FileTree.makeDirectory("\(destination)/\((path as NSString).deletingLastPathComponent)")
                FileTree.remove("\(destination)/\(path)")
                try FileTree.copy(mine, to: "\(destination)/\(path)")
            }
        }
        for path in defaults.subtracting(local) {
            FileTree.remove("\(destination)/\(path)")
        }
    }

    /// Whether two paths hold the same file: equal symlink targets, or equal bytes.
    static func sameContent(_ a: String, _ b: String) -> Bool {
        let fm = FileManager.default
        if let target = try? fm.destinationOfSymbolicLink(atPath: a) { return (try? fm.destinationOfSymbolicLink(atPath: b)) == target }
        if (try? fm.destinationOfSymbolicLink(atPath: b)) != nil { return false }
        return fm.contentsEqual(atPath: a, andPath: b)
    }
}
