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
            let names = threadNames()
            // daemon(3)'s first child exits at once; give it a moment (at most 100 ms) to do so.
            for _ in 0..<20 where children().contains(where: { !$0.isZombie && names.contains($0.name) }) { usleep(5000) }
            reap(names: names)
        }
        return try body()
    }

    /// This process's children (every thread's), from `/proc/self/task/*/children`.
    static func children() -> [ProcessStat] {
        ProcessStat.entries("/proc/self/task").flatMap { task in
            (ProcessStat.read("/proc/self/task/\(task)/children") ?? "").split(separator: " ").compactMap {
                pid_t($0.filter { !$0.isWhitespace }).flatMap(ProcessStat.init(pid:))
            }
        }
    }

    /// The names of this process's threads (a fork carries the name of the thread that forked).
    static func threadNames() -> Set<String> {
        var names = Set(ProcessStat.entries("/proc/self/task").compactMap { ProcessStat.read("/proc/self/task/\($0)/comm")?.filter { $0 != "\n" } })
        if let own = ProcessStat.read("/proc/self/comm")?.filter({ $0 != "\n" }) { names.insert(own) }
        return names
    }

    /// Reaps zombie forks of this process (children named like one of `names`, its threads).
    @discardableResult
    static func reap(names: Set<String> = threadNames()) -> Int {
        var reaped = 0
        for child in children() where child.isZombie && names.contains(child.name) {
            var status: Int32 = 0
            if waitpid(child.pid, &status, WNOHANG) == child.pid { reaped += 1 }
        }
        return reaped
    }
}
