import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import Foundation
import OpenAPIRuntime

extension AgentClient {
    /// Over mutual TLS the agent does not read this host's files: .deb paths (an install's, a
    /// replacement's) are uploaded first and named by digest (`sha256:HEX`). Over the local socket
    /// paths pass as they are.
    func uploadingHostFiles(_ operation: HostOperation, quiet: Bool) async throws -> HostOperation {
        guard !endpoint.address.hasPrefix("unix:"), !operation.hostPaths.isEmpty else { return operation }
        var uploaded: [String: String] = [:]
        for item in operation.hostPaths where uploaded[item] == nil {
            let file = try await upload(item)
            if !quiet { FileHandle.standardError.write(Data("Uploaded \(item) as \(file.reference)\n".utf8)) }
            uploaded[item] = file.reference
        }
        return operation.mappingPackages { uploaded[$0] ?? $0 }
    }

    /// Uploads one .deb file, streamed from disk.
    func upload(_ path: String) async throws -> Components.Schemas.PackageFile {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(message: "cannot read \(path)") }
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value
        // Read on demand, one MiB at a time: the file never sits in memory whole.
        let chunks = AsyncThrowingStream<ArraySlice<UInt8>, any Error> {
            guard let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ArraySlice(data)
        }
        let body = HTTPBody(chunks, length: size.map { .known($0) } ?? .unknown, iterationBehavior: .single)
        switch try await reach({ try await api.uploadPackageFile(body: .applicationVnd_debian_binaryPackage(body)) }) {
        case .created(let created): return try created.body.json
        case .ok(let existing): return try existing.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }
}
