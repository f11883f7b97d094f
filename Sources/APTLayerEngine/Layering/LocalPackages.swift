import Foundation
import OSTree

/// Local .deb files kept in the state directory by SHA-256, so upgrades can re-apply them.
struct LocalPackages {
    let stateDirectory: String

    var directory: String { "\(stateDirectory)/local" }

    func path(of package: LocalPackage) -> String { "\(directory)/\(package.sha256)_\(package.nameVersionArch).deb" }

    /// Checks that `file` is a well-formed .deb whose paths stay inside the root, then stores it.
    func add(_ file: String, token: CancellationToken) throws -> LocalPackage {
        guard FileTree.exists(file) else { throw EngineError(.notFound, "no such file: \(file)") }
        let info = try Subprocess.run(["dpkg-deb", "--show", "--showformat=${Package}\t${Version}\t${Architecture}", file], token: token)
        let fields = info.output.split(separator: "\n").last?.split(separator: "\t").map(String.init) ?? []
        guard info.succeeded, fields.count == 3 else {
            let reason = info.output.split(separator: "\n").first { $0.contains("dpkg-deb") } ?? "not a Debian package"
            throw EngineError(.badPackage, "corrupt package file \(file): \(reason)")
        }
        let contents = try Subprocess.run(["dpkg-deb", "--contents", file], token: token)
        guard contents.succeeded else {
            throw EngineError(.badPackage, "corrupt package file \(file): its data archive is unreadable")
        }
        for line in contents.output.split(separator: "\n") where "-dlhcbp".contains(line.first ?? " ") {
            // tar verbose listing: perms owner size date time path [-> target]
            let columns = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard columns.count == 6 else { continue }
            let path = columns[5].components(separatedBy: " -> ")[0]
            if !path.hasPrefix("./") || path.split(separator: "/").contains("..") {
                throw EngineError(.badPackage, "unsafe package \(file): path \(path) escapes the root")
            }
        }
        let sha = try SHA256.hex(fileAt: file)
        let package = LocalPackage(sha256: sha, name: fields[0], nameVersionArch: "\(fields[0])_\(fields[1])_\(fields[2])")
        try FileTree.makeDirectory(directory, mode: 0o700)
        let target = path(of: package)
        if !FileTree.exists(target) {
            FileTree.remove(target + ".tmp")
            try FileTree.copy(file, to: target + ".tmp")
            guard rename(target + ".tmp", target) == 0 else { throw FileTree.posixError("store \(file)") }
        }
        return package
    }

    /// Deletes stored files no requested state refers to.
    func prune(keeping: Set<String>) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let sha = String(name.prefix(64))
            if !keeping.contains(sha) { FileTree.remove("\(directory)/\(name)") }
        }
    }
}
