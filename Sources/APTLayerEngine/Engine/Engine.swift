import APTLayerModel
import Foundation
import Glibc
import OSTree

/// One sysroot and stateroot that apt-layer manages: the entry point of every engine operation.
///
/// Every method is blocking and must run off Swift's cooperative pool: the CLI calls them from its
/// main thread; the agent uses ``Engine/run(_:token:)`` which hops to a dedicated thread.
public struct Engine: Sendable {
    /// How to find the sysroot and what to report to.
    public struct Options: Sendable {
        /// The sysroot directory (`/` on a real host).
        public var sysroot: String
        /// The stateroot; nil picks the booted one, else the only one.
        public var osname: String?
        /// Wait for the sysroot lock instead of failing with "busy".
        public var waitForLock: Bool
        /// Where progress goes.
        public var progress: any ProgressSink
        /// efivarfs, where the engine reads whether the firmware enforces Secure Boot.
        /// `APT_LAYER_TEST_EFIVARS` names another directory (tests: a host without Secure Boot
        /// stands in for one with it through a copy of the variable).
        public var efivars = ProcessInfo.processInfo.environment["APT_LAYER_TEST_EFIVARS"] ?? "/sys/firmware/efi/efivars"
        /// How many boots a new deployment gets before the menu falls back to the previous one
        /// (1...9; 0: the counter is not armed). Used where the sysroot has GRUB's environment
        /// block (`compose image` writes one); docs/boot-counting.md.
        public var bootTries = 3

        /// Creates options.
        public init(sysroot: String = "/", osname: String? = nil, waitForLock: Bool = false, progress: any ProgressSink = SilentProgress()) {
            self.sysroot = sysroot
            self.osname = osname
            self.waitForLock = waitForLock
            self.progress = progress
        }
    }

    /// The options this host was opened with.
    public let options: Options

    /// Creates a host handle; nothing is opened until an operation runs.
    public init(options: Options) { self.options = options }

    var progress: any ProgressSink { options.progress }
    /// The store of .deb files uploaded through the agent.
    public var uploads: PackageUploads { PackageUploads(stateDirectory: stateDirectory) }
    var stateDirectory: String { options.sysroot == "/" ? "/\(Layout.stateDirectory)" : "\(options.sysroot)/\(Layout.stateDirectory)" }

    /// Opens and loads the sysroot, refusing `/` when it is not OSTree-booted.
    func openSysroot() throws -> Sysroot {
        guard FileTree.isDirectory("\(options.sysroot)/ostree/repo") else {
            throw EngineError(.invalidArgument, "\(options.sysroot) is not an OSTree sysroot (no ostree/repo); run apt-layer init first")
        }
        let sysroot = Sysroot(path: options.sysroot)
        do { try sysroot.load() } catch { throw EngineError.wrap(error, "load sysroot") }
        if options.sysroot == "/" && !sysroot.isBooted {
            throw EngineError(.refused, "/ is not an OSTree-booted system; refusing to touch its deployments (use --sysroot DIR)")
        }
        return sysroot
    }

    /// The stateroot to act on.
    func osname(_ sysroot: Sysroot) throws -> String {
        if let name = options.osname { return name }
        if let booted = sysroot.booted { return booted.osname }
        let deployDir = "\(options.sysroot)/ostree/deploy"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: deployDir)) ?? []).filter { FileTree.isDirectory("\(deployDir)/\($0)") }
        guard names.count == 1 else {
            throw EngineError(
                .invalidArgument,
                names.isEmpty
                    ? "no stateroot in \(options.sysroot); run apt-layer init --os NAME"
                    : "several stateroots (\(names.sorted().joined(separator: ", "))); pass --os")
        }
        return names[0]
    }

    /// Runs `body` holding the sysroot lock, with lock information for "busy" messages and a sweep
    /// of temporary trees left by a killed run.
    func locked<T>(_ operation: String, _ body: (Sysroot) throws -> T) throws -> T {
        let sysroot = try openSysroot()
        let acquired: Bool
        do { acquired = try sysroot.tryLock() } catch { throw EngineError.wrap(error, "lock sysroot") }
        if !acquired {
            if options.waitForLock {
                progress.phase("Waiting for the sysroot lock")
                do { try sysroot.lock() } catch { throw EngineError.wrap(error, "lock sysroot") }
            } else {
                throw EngineError(.busy, "busy: \(LockInfo.read(stateDirectory)?.summary ?? "another apt-layer or ostree operation is running")")
            }
        }
        defer {
            LockInfo.clear(stateDirectory)
            sysroot.unlock()
        }
        try FileTree.makeDirectory(stateDirectory, mode: 0o700)
        LockInfo(operation: operation, started: Date(), pid: getpid()).write(stateDirectory)
        // Processes of a run that died (apt, dpkg, maintainer scripts) must be gone before their
        // build tree is swept; every child of this run holds the guard until it exits.
        let guardian = try ChildGuard.acquire(stateDirectory: stateDirectory) { pids in
            progress.phase("Stopping \(pids.count) process(es) left by an interrupted run")
        }
        defer { guardian.release() }
        sweepTemporaryTrees()
        do { try sysroot.load() } catch { throw EngineError.wrap(error, "reload sysroot") }
        applyStagedAccounts(sysroot)
        sweepLiveLeftovers(sysroot)
        return try body(sysroot)
    }

    /// After a crash: waits for the sysroot lock, then removes temporary trees a killed run left.
    /// The deployment list is whatever the last completed libostree write made it.
    public func recoverAfterCrash() throws {
        var options = self.options
        options.waitForLock = true
        try Engine(options: options).locked("recover") { _ in }
    }

    /// Removes temporary trees that a killed run left in the repository's tmp directory.
    func sweepTemporaryTrees() {
        let tmp = "\(options.sysroot)/ostree/repo/tmp"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix(Layout.temporaryPrefix) {
            OverlayTree.removeBuildDirectory("\(tmp)/\(name)")
        }
    }

    /// The deployments of `osname`, in boot order.
    func deployments(_ sysroot: Sysroot, _ osname: String) -> [Deployment] {
        sysroot.deployments.filter { $0.osname == osname }
    }

    /// The base commit under a deployment's commit (itself when it is not layered).
    func baseChecksum(of commit: Commit) -> String {
        commit.bool(Layout.Key.clientLayer) == true ? (commit.parent ?? commit.checksum) : commit.checksum
    }

    /// Runs a blocking operation on its own thread, cancelling it when the task is cancelled.
    public static func run<T: Sendable>(_ body: @escaping @Sendable (CancellationToken) throws -> T, token: CancellationToken = CancellationToken())
        async throws -> T
    {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let thread = Thread {
                    continuation.resume(with: Result { try body(token) })
                }
                thread.stackSize = 4 << 20
                thread.start()
            }
        } onCancel: {
            token.cancel()
        }
    }
}

/// Who holds the sysroot lock, for the "busy" message.
struct LockInfo: Codable {
    var operation: String
    var started: Date
    var pid: Int32

    static func path(_ state: String) -> String { "\(state)/lock-info.json" }

    var summary: String {
        let formatter = ISO8601DateFormatter()
        return "\(operation) started at \(formatter.string(from: started)) by pid \(pid)"
    }

    func write(_ state: String) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        if let data = try? encoder.encode(self) { try? FileTree.write(Self.path(state), String(decoding: data, as: UTF8.self), mode: 0o600) }
    }

    static func read(_ state: String) -> LockInfo? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return FileManager.default.contents(atPath: path(state)).flatMap { try? decoder.decode(LockInfo.self, from: $0) }
    }

    static func clear(_ state: String) { unlink(path(state)) }
}
