import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import Foundation
import Glibc
import OpenAPIRuntime
import Synchronization

/// How much the agent accepts in uploaded .deb files.
public struct UploadLimits: Sendable, Equatable {
    /// Largest single upload.
    public var maxFileBytes: Int64
    /// Most bytes the upload store may hold.
    public var maxStoreBytes: Int64

    /// Creates limits.
    public init(maxFileBytes: Int64 = 512 << 20, maxStoreBytes: Int64 = 4 << 30) {
        self.maxFileBytes = maxFileBytes
        self.maxStoreBytes = maxStoreBytes
    }
}

/// Bytes that uploads are writing right now, so that concurrent uploads share the store's cap
/// instead of each checking it against what was stored when it began.
final class UploadsInFlight: Sendable {
    private let bytes = Mutex<Int64>(0)

    /// Takes `n` more bytes if everything in flight still fits in `available`.
    func reserve(_ n: Int64, within available: Int64) -> Bool {
        bytes.withLock { total in
            guard total + n <= available else { return false }
            total += n
            return true
        }
    }

    func release(_ n: Int64) { bytes.withLock { $0 -= n } }
}

/// Uploads of .deb files: streamed to the state directory under a size limit, checked (a
/// well-formed .deb whose paths stay inside the root), kept by SHA-256, installed as `sha256:HEX`.
/// An upload that fails for any reason leaves no file behind.
extension APIHandler {
    var uploads: PackageUploads { Engine(options: engineOptions).uploads }

    public func uploadPackageFile(_ input: Operations.UploadPackageFile.Input) async throws -> Operations.UploadPackageFile.Output {
        let body: HTTPBody
        switch input.body {
        case .applicationVnd_debian_binaryPackage(let b), .binary(let b): body = b
        }
        // A declared length over max-upload-bytes was refused by BodyLimitMiddleware already.
        let (uploads, limits, inFlight) = (self.uploads, uploadLimits, uploadsInFlight)
        let announced: Int64 = if case .known(let length) = body.length { length } else { 0 }
        let (incoming, available) = try await Self.offPool { () throws -> ((path: String, descriptor: Int32), Int64) in
            uploads.prune()
            let available = limits.maxStoreBytes - uploads.totalBytes()
            guard announced <= available else { throw Self.storeFull(limits) }
            return (try uploads.incoming(), available)
        }
        var written: Int64 = 0
        defer { inFlight.release(written) }
        do {
            defer { close(incoming.descriptor) }
            for try await chunk in body {
                guard written + Int64(chunk.count) <= limits.maxFileBytes else { throw AgentProblem.uploadTooLarge(limit: limits.maxFileBytes) }
                guard inFlight.reserve(Int64(chunk.count), within: available) else { throw Self.storeFull(limits) }
                written += Int64(chunk.count)
                try Self.writeAll(incoming.descriptor, chunk)
            }
            guard written > 0 else { throw AgentProblem(status: 422, kind: .badPackage, title: "Bad package", detail: "the upload is empty") }
        } catch {
            unlink(incoming.path)
            throw error
        }
        let (stored, created) = try await Self.offPool { try uploads.accept(incoming.path) }
        let file = Components.Schemas.PackageFile(stored)
        return created
            ? .created(.init(headers: .init(location: "/v1/package-files/\(stored.sha256)"), body: .json(file)))
            : .ok(.init(body: .json(file)))
    }

    public func listPackageFiles(_ input: Operations.ListPackageFiles.Input) async throws -> Operations.ListPackageFiles.Output {
        let uploads = self.uploads
        let files = try await Self.offPool { uploads.list() }
        return .ok(.init(body: .json(.init(files: files.map(Components.Schemas.PackageFile.init)))))
    }

    public func getPackageFile(_ input: Operations.GetPackageFile.Input) async throws -> Operations.GetPackageFile.Output {
        let (uploads, sha256) = (self.uploads, try Self.digest(input.path.sha256))
        guard let file = try await Self.offPool({ uploads.file(sha256) }) else { throw AgentProblem.notFound("no uploaded package sha256:\(sha256)") }
        return .ok(.init(body: .json(.init(file))))
    }

    public func deletePackageFile(_ input: Operations.DeletePackageFile.Input) async throws -> Operations.DeletePackageFile.Output {
        let (uploads, sha256) = (self.uploads, try Self.digest(input.path.sha256))
        guard try await Self.offPool({ uploads.delete(sha256) }) else { throw AgentProblem.notFound("no uploaded package sha256:\(sha256)") }
        return .noContent(.init())
    }

    /// A path's digest, checked against the schema's pattern (64 lowercase hex digits).
    static func digest(_ text: String) throws -> String {
        guard let digest = try? Operand.uploadDigest(in: Operand.uploadPrefix + text) else {
            throw AgentProblem.badRequest("\(text.debugDescription) is not a SHA-256 digest (64 lowercase hex digits)")
        }
        return digest
    }

    /// Runs blocking work (file work, dpkg-deb, libostree reads) on a thread of its own, not the
    /// cooperative pool; engine errors become problems.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await Engine.run { _ in try body() }
        } catch let error as EngineError {
            throw AgentProblem.engine(error)
        }
    }

    /// Writes a chunk of an upload; a full filesystem is 507 (``AgentProblem/engine(_:)``).
    static func writeAll(_ fd: Int32, _ chunk: ArraySlice<UInt8>) throws {
        try chunk.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let code = errno
                    throw AgentProblem.engine(
                        EngineError(
                            .system, "store the upload: \(String(cString: strerror(code)))",
                            underlying: POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)))
                }
                offset += n
            }
        }
    }

    static func storeFull(_ limits: UploadLimits) -> AgentProblem {
        AgentProblem(
            status: 507, kind: .insufficientStorage, title: "Upload store full",
            detail: "uploads may hold \(limits.maxStoreBytes) bytes (max-upload-store-bytes); delete uploads that were installed")
    }

}
