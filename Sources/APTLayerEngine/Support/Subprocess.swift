import APTLayerModel
import CSpawn
import Glibc

/// Runs a program in its own process group, capturing stdout and stderr together.
///
/// Blocking: call it from the engine's transaction thread, never from the cooperative pool.
struct Subprocess {
    /// The outcome of a finished program.
    struct Result {
        /// Exit status, or 128+signal when killed.
        var status: Int32
        /// Everything the program printed (stdout and stderr interleaved).
        var output: String
        /// The signal that killed the program, if one did.
        var signal: Int32? = nil
        var succeeded: Bool { status == 0 }

        /// "apt-get killed by signal 9 (KILL)" for a signal death, nil for an exit.
        func signalDeath(_ program: String) -> String? {
            guard let signal else { return nil }
            let name = strsignal(signal).map { String(cString: $0) } ?? "signal \(signal)"
            return "\(program) killed by signal \(signal) (\(name))"
        }
    }

    /// Runs `argv` (the first element found on `PATH`) and waits for it.
    /// - Parameters:
    ///   - environment: the complete environment; `PATH` defaults to the standard one.
    ///   - token: kills the process group when cancelled.
    ///   - killOrphans: while the program runs, kill members of its process group whose parent
    ///     died (``killOrphans(ofGroup:)``): set for apt and dpkg, whose sandboxes can leave one.
    ///   - onLine: called for every output line as it arrives.
    static func run(
        _ argv: [String],
        environment: [String: String] = [:],
        token: CancellationToken? = nil,
        killOrphans: Bool = false,
        onLine: ((String) -> Void)? = nil
    ) throws -> Result {
        try token?.check()
        var env = environment
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        if env["LC_ALL"] == nil { env["LC_ALL"] = "C.UTF-8" }

        var fds: [Int32] = [0, 0]
        guard apt_layer_pipe(&fds) == 0 else { throw EngineError(.system, "pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        guard let executable = resolve(argv[0], path: env["PATH"] ?? "") else {
            close(readEnd)
            close(writeEnd)
            throw EngineError(.system, "cannot run \(argv[0]): not found")
        }

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        // The child dies with this thread (parent-death signal armed before exec), runs in its own
        // process group, and gets nothing this process has open but the output pipe and, during a
        // locked run, the child guard as fd 3.
        var pid: pid_t = 0
        let keep = ChildGuard.inherited
        let spawnStatus = apt_layer_spawn(executable, cArgs, cEnv, writeEnd, keep, &pid)
        close(writeEnd)
        guard spawnStatus == 0 else {
            close(readEnd)
            throw EngineError(.system, "cannot run \(argv[0]): \(String(cString: strerror(spawnStatus)))")
        }
        token?.register(processGroup: pid)

        let output = collect(pid: pid, readEnd: readEnd, killOrphans: killOrphans, onLine: onLine)
        close(readEnd)
        // Kill anything left in the group (bwrap children) so nothing outlives the run, while the
        // exited leader is still a zombie: until it is reaped its pid, and so the group's id,
        // cannot be given to another process. Killing after the reap (as before) could hit an
        // unrelated process that had just been given the recycled pid as its own group (a session
        // leader: every child Foundation's Process starts), seen under a parallel test run.
        kill(-pid, SIGKILL)
        token?.unregister(processGroup: pid)
        let status = Self.reap(pid)
        try token?.check()
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self), signal: exited ? nil : status & 0x7f)
    }

    /// How long output is still read after the program itself exited: a descendant that escaped
    /// the group kill (an inner bwrap orphaned before it armed its parent-death signal) may hold the
    /// pipe open forever.
    static let drainAfterExit: Duration = .seconds(2)

    /// How often a program run with `killOrphans` has its process group checked for orphans.
    static let orphanCheckMilliseconds: Int32 = 500

    /// Waits for `pid` to exit and reaps it; the raw wait status.
    static func reap(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Whether `pid` has exited, leaving it unreaped (a zombie keeps its pid and group id taken).
    static func hasExited(_ pid: pid_t, block: Bool) -> Bool {
        while true {
            var info = siginfo_t()
            let r = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG))
            if r == 0 { return info._sifields._sigchld.si_pid == pid }
            if errno == EINTR { continue }
            return false
        }
    }

    /// Reads the program's output until end of file, or until ``drainAfterExit`` after it exited,
    /// and waits for it to exit, without reaping it (the caller kills its group, then reaps).
    /// Returns everything read.
    private static func collect(pid: pid_t, readEnd: Int32, killOrphans: Bool, onLine: ((String) -> Void)?) -> [UInt8] {
        let pidfd = apt_layer_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var output: [UInt8] = []
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        var exitedAt: ContinuousClock.Instant? = nil
        var lastOrphanCheck = ContinuousClock.now
        /// Milliseconds of the drain left (0 when it is over).
        func drainLeft(_ exitedAt: ContinuousClock.Instant) -> Int32 {
            let left = drainAfterExit - (ContinuousClock.now - exitedAt)
            return left <= .zero ? 0 : Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
        }
        reading: while true {
            var polls = [pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)]
            if exitedAt == nil, pidfd >= 0 { polls.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            let timeout: Int32 =
                if let exitedAt { drainLeft(exitedAt) } else if killOrphans { orphanCheckMilliseconds } else { pidfd >= 0 ? -1 : 200 }
            let ready = poll(&polls, nfds_t(polls.count), timeout)
            if ready < 0 && errno == EINTR { continue }
            if killOrphans, exitedAt == nil, ContinuousClock.now - lastOrphanCheck >= .milliseconds(orphanCheckMilliseconds) {
                lastOrphanCheck = .now
                for orphan in Self.killOrphans(ofGroup: pid) {
                    let note = Array("apt-layer: killed \(orphan.name) (pid \(orphan.pid)), orphaned in the sandbox\n".utf8)
                    output.append(contentsOf: note)
                }
            }
            if polls[0].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break reading }
                let chunk = buffer[0..<n]
                output.append(contentsOf: chunk)
                if let onLine {
                    pending.append(contentsOf: chunk)
                    while let newline = pending.firstIndex(of: 10) {
                        onLine(String(decoding: pending[..<newline], as: UTF8.self))
                        pending.removeSubrange(...newline)
                    }
                }
            }
            if let exitedAt {
                if ready == 0 || drainLeft(exitedAt) == 0 { break reading }
            } else if pidfd < 0 || polls[1].revents != 0, hasExited(pid, block: false) {
                exitedAt = .now
            }
        }
        if let onLine, !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }
        if exitedAt == nil { _ = hasExited(pid, block: true) }
        return output
    }

    /// `name` when it contains a slash, else the first executable `name` in `path`'s directories.
    static func resolve(_ name: String, path: String) -> String? {
        if name.contains("/") { return name }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs `argv` and throws a system error with the program's last output line when it fails.
    @discardableResult
    static func check(_ argv: [String], environment: [String: String] = [:], token: CancellationToken? = nil) throws -> String {
        let result = try run(argv, environment: environment, token: token)
        guard result.succeeded else {
            if let death = result.signalDeath(argv[0]) { throw EngineError(.system, death) }
            let last = result.output.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)"
            throw EngineError(.system, "\(argv[0]) failed: \(last)")
        }
        return result.output
    }
}
