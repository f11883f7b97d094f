import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Local .deb files kept in the state directory by SHA-256, so upgrades can re-apply them.
struct LocalPackages {
    let stateDirectory: String

    var directory: String { "\(stateDirectory)/local" }

    func path(of package: LocalPackage) -> String { "\(directory)/\(package.sha256)_\(package.nameVersionArch).deb" }

    /// The largest .deb accepted.
    static let maximumSize: Int64 = 2 << 30

    /// Reads `file` once into `copy`: opened without following a symlink and without blocking (a
    /// FIFO or a device is refused, never waited on), a regular file of at most ``maximumSize``.
    /// Every refusal says the same words, so an error does not tell whether a file exists.
    static func readOnce(_ file: String, into copy: String, token: CancellationToken) throws {
        let refused = EngineError(
            .invalidArgument, "cannot use package file \(file): it must be a readable regular .deb file (no symlink, FIFO or device)")
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { throw refused }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw refused }
        guard Int64(info.st_size) <= maximumSize else { throw EngineError(.badPackage, "package file \(file) is larger than 2 GiB") }
        let out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard out >= 0 else { throw FileTree.posixError("store \(file)") }
        defer { close(out) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var total: Int64 = 0
        while true {
            try token.check()
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw refused }
            total += Int64(n)
            guard total <= maximumSize else { throw EngineError(.badPackage, "package file \(file) is larger than 2 GiB") }
            var offset = 0
            while offset < n {
                let written = buffer.withUnsafeBytes { write(out, $0.baseAddress! + offset, n - offset) }
                guard written > 0 else { throw FileTree.posixError("store \(file)") }
                offset += written
            }
        }
    }

    /// Copies `file` into the content store (read once, see ``readOnce(_:into:token:)``), checks
    /// that the copy is a well-formed .deb whose paths stay inside the root, and keeps it by SHA-256.
    func add(_ file: String, token: CancellationToken) throws -> LocalPackage {
        try Operand.checkHostPath(file)
        try FileTree.makeDirectory(directory, mode: 0o700)
        let incoming = "\(directory)/.incoming-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).deb"
        defer { FileTree.remove(incoming) }
        try Self.readOnce(file, into: incoming, token: token)
        let package = try inspect(incoming, shownAs: file, token: token)
        let target = path(of: package)
        if !FileTree.exists(target) {
            guard rename(incoming, target) == 0 else { throw FileTree.posixError("store \(file)") }
        }
        return package
    }

    /// Reads a stored copy's control fields and checks its paths.
    func inspect(_ file: String, shownAs shown: String, token: CancellationToken) throws -> LocalPackage {
        let info = try Subprocess.run(["dpkg-deb", "--show", "--showformat=${Package}\t${Version}\t${Architecture}", file], token: token)
        let fields = info.output.split(separator: "\n").last?.split(separator: "\t").map(String.init) ?? []
        guard info.succeeded, fields.count == 3 else {
            let reason = info.output.split(separator: "\n").first { $0.contains("dpkg-deb") }.map(String.init) ?? "not a Debian package"
            // dpkg-deb names the store's private copy: say the file the caller named instead.
            throw EngineError(.badPackage, "corrupt package file \(shown): \(reason.replacingOccurrences(of: file, with: shown))")
        }
        let contents = try Subprocess.run(["dpkg-deb", "--contents", file], token: token)
        guard contents.succeeded else {
            throw EngineError(.badPackage, "corrupt package file \(shown): its data archive is unreadable")
        }
        for line in contents.output.split(separator: "\n") where "-dlhcbp".contains(line.first ?? " ") {
            // tar verbose listing: perms owner size date time path [-> target]
            let columns = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard columns.count == 6 else { continue }
            let path = columns[5].components(separatedBy: " -> ")[0]
            if !path.hasPrefix("./") || path.split(separator: "/").contains("..") {
                throw EngineError(.badPackage, "unsafe package \(shown): path \(path) escapes the root")
            }
        }
        let sha = try SHA256.hex(fileAt: file)
        return LocalPackage(sha256: sha, name: fields[0], nameVersionArch: "\(fields[0])_\(fields[1])_\(fields[2])")
    }

    /// Deletes stored files no requested state refers to.
    func prune(keeping: Set<String>) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".incoming-") {
            let sha = String(name.prefix(64))
            if !keeping.contains(sha) { FileTree.remove("\(directory)/\(name)") }
        }
    }
}
