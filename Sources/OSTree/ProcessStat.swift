import Glibc

/// One process as `/proc/PID/stat` shows it. It lives at the bottom, beside ``ForkReaper`` which
/// needs it; the engine's sweep for orphaned sandbox processes reads processes through it too.
public struct ProcessStat: Sendable {
    /// The process id.
    public var pid: pid_t
    /// The command name (15 characters at most; a fork keeps its thread's name until it execs).
    public var name: String
    /// The state letter (`R`, `S`, `Z` …).
    public var state: Character
    /// The parent's pid.
    public var parent: pid_t
    /// The process group.
    public var group: pid_t

    /// Dead and not yet waited for.
    public var isZombie: Bool { state == "Z" || state == "X" }

    /// Reads `/proc/PID/stat`; nil when the process is gone.
    public init?(pid: pid_t) {
        // "PID (NAME) STATE PPID PGRP ...": the name may hold spaces and parentheses; it ends at the last ')'.
        guard let stat = Self.read("/proc/\(pid)/stat"), let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let parent = pid_t(fields[1]), let group = pid_t(fields[2]) else { return nil }
        self.pid = pid
        self.name = String(stat[stat.index(after: open)..<close])
        self.state = state
        self.parent = parent
        self.group = group
    }

    /// Every process this one can see.
    public static func all() -> [ProcessStat] { entries("/proc").compactMap { pid_t($0).flatMap(ProcessStat.init(pid:)) } }

    /// The names in a directory, without "." and "..".
    static func entries(_ path: String) -> [String] {
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
    public static func read(_ path: String) -> String? {
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
