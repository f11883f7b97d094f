import APTLayerModel
import Foundation
import OSTree

extension Engine {
    /// Lays out an empty sysroot with one stateroot (`ostree admin init-fs` + `os-init`), for tests,
    /// demos and image building. The bootloader is set to `none` (BLS entries only).
    public func initialize(osname: String) throws {
        guard options.sysroot != "/" else { throw EngineError(.refused, "refusing to initialise /; pass --sysroot DIR") }
        do {
            for dir in ["boot", "dev", "proc", "run", "sys", "tmp", "root"] {
                try FileTree.makeDirectory("\(options.sysroot)/\(dir)")
            }
            let sysroot = Sysroot(path: options.sysroot)
            try sysroot.ensureInitialized()
            try sysroot.load()
            try sysroot.initStateroot(osname)
            try sysroot.repo().setConfig(group: "sysroot", key: "bootloader", value: "none")
        } catch {
            throw EngineError.wrap(error, "initialise \(options.sysroot)")
        }
    }

    /// The repository a compose writes to: `repo`, or this sysroot's.
    public func composeRepo(_ repo: String?) throws -> Repo {
        do {
            if let repo { return FileTree.exists("\(repo)/config") ? try Repo(path: repo) : try Repo.create(path: repo) }
            return try Repo(path: "\(options.sysroot)/ostree/repo")
        } catch {
            throw EngineError.wrap(error, "open repository")
        }
    }

    /// `compose rootfs`: converts a root filesystem in place and commits it.
    public func composeRootfs(_ rootfs: String, repo: String?, options composeOptions: RootfsComposer.Options) throws -> String {
        try RootfsComposer(progress: progress).compose(rootfs: rootfs, into: composeRepo(repo), options: composeOptions)
    }

    /// `compose tree`: runs mmdebstrap for a treefile, converts and commits.
    public func composeTree(_ treefile: String, repo: String?, token: CancellationToken = .init()) throws -> String {
        guard let text = FileTree.read(treefile) else { throw EngineError(.notFound, "no such treefile: \(treefile)") }
        let tree = try Treefile.parse(text, directory: (treefile as NSString).deletingLastPathComponent)
        let target = try composeRepo(repo)
        let work = "\(target.path)/tmp"
        try FileTree.makeDirectory(work)
        return try tree.compose(into: target, workDirectory: work, progress: progress, token: token)
    }
}
