import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Hardlink checkouts of base commits kept between builds, laid out for layering (`usr/etc` moved
/// to `etc`): the read-only lower layer of each build's overlay. A base is checked out once, by
/// the first build on it, instead of by every build; checkouts of commits that are no longer a
/// deployment's base are deleted with the base refs (``Engine/refreshBaseRefs(_:extra:)``).
///
/// They live in the state directory, on the repository's filesystem (hardlinks to its objects);
/// overlayfs never writes to a lower layer, so the objects cannot be changed through them.
struct BaseCheckouts {
    let repo: Repo
    let stateDirectory: String

    var directory: String { "\(stateDirectory)/checkouts" }

    /// The prepared checkout of `base`, made now when missing (atomically: a partial one from a
    /// killed run is never used).
    func prepared(_ base: String, cancellable: Cancellable?) throws -> String {
        let path = "\(directory)/\(base)"
        if FileTree.isDirectory(path) { return path }
        let partial = "\(directory)/.partial-\(base)"
        FileTree.remove(partial)
        try FileTree.makeDirectory(directory)
        do {
            try repo.checkoutHardlinks(base, to: partial, cache: nil, cancellable: cancellable)
        } catch {
            FileTree.remove(partial)
            throw EngineError.wrap(error, "check out base")
        }
        if FileTree.isDirectory("\(partial)/usr/etc") {
            guard rename("\(partial)/usr/etc", "\(partial)/etc") == 0 else {
                let error = FileTree.posixError("move usr/etc to etc in the base checkout")
                FileTree.remove(partial)
                throw error
            }
        }
        guard rename(partial, path) == 0 else {
            let error = FileTree.posixError("keep the base checkout")
            FileTree.remove(partial)
            throw error
        }
        return path
    }

    /// Deletes the checkouts of commits not in `bases`, and partial ones.
    func prune(keeping bases: Set<String>) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !bases.contains(name) {
            FileTree.remove("\(directory)/\(name)")
        }
    }
}
