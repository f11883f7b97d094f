import Glibc

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), not exported to Swift without _GNU_SOURCE.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

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
    ///   - onLine: called for every output line as it arrives.
    static func run(
        _ argv: [String],
        environment: [String: String] = [:],
        token: CancellationToken? = nil,
        onLine: ((String) -> Void)? = nil
    ) throws -> Result {
        try token?.check()
        var env = environment
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        if env["LC_ALL"] == nil { env["LC_ALL"] = "C.UTF-8" }

        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw EngineError(.system, "pipe: \(String(cString: strerror(errno)))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        // Nothing else this process has open (other threads' pipes, libostree and journal fds)
        // reaches the child: tools like mmdebstrap pass their own descriptors by number.
        _ = spawnCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t()
        sigfillset(&defaultSignals)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawnStatus = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        close(writeEnd)
        guard spawnStatus == 0 else {
            close(readEnd)
            throw EngineError(.system, "cannot run \(argv[0]): \(String(cString: strerror(spawnStatus)))")
        }
        token?.register(processGroup: pid)
        defer { token?.unregister(processGroup: pid) }

        var output: [UInt8] = []
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
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
        close(readEnd)
        if let onLine, !pending.isEmpty { onLine(String(decoding: pending, as: UTF8.self)) }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // Reap anything left in the group (bwrap children) so nothing outlives the run.
        kill(-pid, SIGKILL)
        try token?.check()
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self), signal: exited ? nil : status & 0x7f)
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
