import Glibc

/// Reaps what libostree forks and never waits for.
///
/// Writing deployments syncs and freezes the filesystem holding `/boot`; first libostree forks a
/// watchdog that thaws it should this process die mid-freeze. The watchdog calls `daemon(3)`,
/// whose first child exits at once and nobody waits for it: without this, a long-running agent
/// keeps one zombie per deployment write (issue 26). The grandchild is reparented away from us.
///
/// Only a zombie child that still carries one of this process's thread names is reaped: a fork
/// that never ran another program. Children that other code waits for (apt, dpkg, bwrap, curl)
/// have run another program and carry its name. A first child that had not exited yet when its
/// own write returned is reaped by the next write.
enum ForkReaper {
    /// Runs `body` (a libostree call that may fork) and reaps the forks it and earlier calls left.
    static func reaping<T>(_ body: () throws -> T) rethrows -> T {
        defer {
            // daemon(3)'s first child exits at once; give it a moment (at most 100 ms) to do so.
            for _ in 0..<20 {
                let names = threadNames()
                guard children().contains(where: { !$0.isZombie && names.contains($0.name) }) else { break }
                usleep(5000)
            }
            reap()
        }
        return try body()
    }

    /// A child of this process as `/proc` shows it.
    struct Child {
        var pid: pid_t
        var name: String
        var isZombie: Bool
    }

    /// This process's children (every thread's), from `/proc/self/task/*/children`.
    static func children() -> [Child] {
        let tasks = entries("/proc/self/task")
        var pids: [pid_t] = []
        for task in tasks {
            guard let text = read("/proc/self/task/\(task)/children") else { continue }
            pids += text.split(separator: " ").compactMap { pid_t($0.filter { !$0.isWhitespace }) }
        }
        return pids.compactMap { pid in
            // "PID (NAME) STATE ...": the name may hold spaces and parentheses; it ends at the last ')'.
            guard let stat = read("/proc/\(pid)/stat"), let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else {
                return nil
            }
            let name = String(stat[stat.index(after: open)..<close])
            let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
            return Child(pid: pid, name: name, isZombie: state == "Z")
        }
    }

    /// The names of this process's threads (a fork carries the name of the thread that forked).
    static func threadNames() -> Set<String> {
        let tasks = entries("/proc/self/task")
        var names = Set(tasks.compactMap { read("/proc/self/task/\($0)/comm")?.filter { $0 != "\n" } })
        if let own = read("/proc/self/comm")?.filter { $0 != "\n" } { names.insert(own) }
        return names
    }

    /// Reaps zombie forks of this process.
    @discardableResult
    static func reap() -> Int {
        let names = threadNames()
        var reaped = 0
        for child in children() where child.isZombie && names.contains(child.name) {
            var status: Int32 = 0
            if waitpid(child.pid, &status, WNOHANG) == child.pid { reaped += 1 }
        }
        return reaped
    }

    /// The names in a directory, without "." and "..".
    private static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A small procfs file's text (procfs files report size 0: read until end of file).
    private static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
