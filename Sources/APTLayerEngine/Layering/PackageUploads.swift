import APTLayerModel
import Foundation
import Glibc
import OSTree

/// .deb files uploaded through the agent, kept by SHA-256 in `STATE/uploads` until deleted or
/// ``retention`` old. An install names one as `sha256:HEX`; the deployment that installs it keeps
/// its own copy in the local-package store, so deleting an upload never breaks a deployment.
public struct PackageUploads: Sendable {
    /// One stored upload.
    public struct File: Codable, Sendable, Equatable {
        /// Hex SHA-256 of the file.
        public var sha256: String
        /// Control fields.
        public var package: String
        public var version: String
        public var architecture: String
        /// Size in bytes.
        public var size: Int64
        /// When it was first uploaded.
        public var uploadedAt: Date
        /// What an install names it by.
        public var reference: String { "\(PackageUploads.referencePrefix)\(sha256)" }
    }

    /// The state directory the store lives in.
    public let stateDirectory: String
    /// How long an upload is kept.
    public static let retention: TimeInterval = 7 * 86400
    /// Prefix of an install item that names an upload.
    public static let referencePrefix = Operand.uploadPrefix

    var directory: String { "\(stateDirectory)/uploads" }

    /// A store in `stateDirectory`.
    public init(stateDirectory: String) { self.stateDirectory = stateDirectory }

    /// The stored file for `sha256`.
    func path(_ sha256: String) -> String { "\(directory)/\(sha256).deb" }
    private func metadataPath(_ sha256: String) -> String { "\(directory)/\(sha256).json" }

    /// Creates an empty file for an incoming upload (mode 0600, never an existing path); the
    /// caller writes it and hands it to ``accept(_:token:)``, or removes it.
    public func incoming() throws -> (path: String, descriptor: Int32) {
        try FileTree.makeDirectory(directory, mode: 0o700)
        let path = "\(directory)/.incoming-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).deb"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileTree.posixError("create upload") }
        return (path, fd)
    }

    /// Checks a written upload (a well-formed .deb whose paths stay inside the root) and keeps
    /// it by SHA-256. Returns the stored file and whether it is new. The incoming file is gone
    /// afterwards, whatever happens.
    public func accept(_ incoming: String, token: CancellationToken = .init()) throws -> (file: File, created: Bool) {
        defer { FileTree.remove(incoming) }
        let package = try LocalPackages(stateDirectory: stateDirectory).inspect(incoming, shownAs: "upload", token: token)
        if let existing = file(package.sha256) { return (existing, false) }
        let fields = package.nameVersionArch.split(separator: "_").map(String.init)
        var info = stat()
        guard stat(incoming, &info) == 0 else { throw FileTree.posixError("store upload") }
        let stored = File(
            sha256: package.sha256, package: package.name, version: fields.count == 3 ? fields[1] : "",
            architecture: fields.count == 3 ? fields[2] : "", size: Int64(info.st_size), uploadedAt: Date())
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try FileTree.write(metadataPath(stored.sha256), String(decoding: try encoder.encode(stored), as: UTF8.self), mode: 0o600)
        guard rename(incoming, path(stored.sha256)) == 0 else {
            unlink(metadataPath(stored.sha256))
            throw FileTree.posixError("store upload")
        }
        return (stored, true)
    }

    /// One stored upload.
    public func file(_ sha256: String) -> File? {
        guard FileTree.exists(path(sha256)), let text = FileTree.read(metadataPath(sha256)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(File.self, from: Data(text.utf8))
    }

    /// Every stored upload, newest first.
    public func list() -> [File] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".deb") && !$0.hasPrefix(".") }.compactMap { file(String($0.dropLast(4))) }
            .sorted { $0.uploadedAt > $1.uploadedAt }
    }

    /// Deletes an upload; false when there was none.
    @discardableResult
    public func delete(_ sha256: String) -> Bool {
        guard FileTree.exists(path(sha256)) else { return false }
        unlink(path(sha256))
        unlink(metadataPath(sha256))
        return true
    }

    /// Bytes the stored uploads hold (incoming files are counted by whoever is writing them).
    public func totalBytes() -> Int64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".incoming-") }.reduce(0) { total, name in
            var info = stat()
            return total + (stat("\(directory)/\(name)", &info) == 0 ? Int64(info.st_size) : 0)
        }
    }

    /// Deletes uploads older than ``retention`` and incoming files of a process that is gone or
    /// older than an hour.
    public func prune(now: Date = Date()) {
        for file in list() where now.timeIntervalSince(file.uploadedAt) > Self.retention { delete(file.sha256) }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".incoming-") {
            let path = "\(directory)/\(name)"
            let pid = name.split(separator: "-").dropFirst().first.flatMap { pid_t($0) } ?? 0
            var info = stat()
            let old = stat(path, &info) == 0 && now.timeIntervalSince1970 - Double(info.st_mtim.tv_sec) > 3600
            if old || (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) { unlink(path) }
        }
    }
}
