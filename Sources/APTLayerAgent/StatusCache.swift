import APTLayerEngine
import APTLayerModel
import Foundation
import Glibc
import Synchronization

/// Keeps the last status document while the sysroot's deployment state is unchanged.
///
/// The key is cheap to compute: the modification times of `boot/` and `boot/loader` (rollback and
/// every deployment write swap the loader link), of the boot counter's `boot/grub/grubenv`, of each stateroot's `deploy/` directory (new,
/// removed and re-pinned deployments rename files there), and on a booted host of apply-live's state file. Reading status from libostree costs a
/// sysroot load and a commit read per deployment; a cache hit costs a few `stat` calls.
public final class StatusCache: Sendable {
    private let cached = Mutex<(key: [Int64], document: StatusDocument)?>(nil)
    let sysroot: String

    /// Creates an empty cache for `sysroot`.
    public init(sysroot: String) { self.sysroot = sysroot }

    func key() -> [Int64] {
        // The boot counter's block is replaced by rename (a new inode) at every arm and clear.
        var paths = ["\(sysroot)/boot", "\(sysroot)/boot/loader", "\(sysroot)/boot/grub/grubenv", "\(sysroot)/ostree/deploy"]
        // apply-live changes what status shows without touching a deployment; its state file is
        // replaced by rename at every step.
        if sysroot == "/" { paths.append(Engine.liveStatePath) }
        let deploy = "\(sysroot)/ostree/deploy"
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: deploy)) ?? []).sorted() {
            paths.append("\(deploy)/\(name)/deploy")
        }
        return paths.flatMap { path -> [Int64] in
            var s = stat()
            guard lstat(path, &s) == 0 else { return [-1] }
            return [Int64(s.st_mtim.tv_sec), Int64(s.st_mtim.tv_nsec), Int64(s.st_ino)]
        }
    }

    /// The cached document when the key still matches, else a fresh one from `load`.
    func document(_ load: () async throws -> StatusDocument) async throws -> StatusDocument {
        let current = key()
        if let hit = cached.withLock({ $0 }), hit.key == current { return hit.document }
        let document = try await load()
        cached.withLock { $0 = (current, document) }
        return document
    }

    /// The status document, read by the engine on its own thread when the cache is stale.
    func document(_ options: Engine.Options) async throws -> StatusDocument {
        try await document { try await APIHandler.offPool { try Engine(options: options).status() } }
    }
}
