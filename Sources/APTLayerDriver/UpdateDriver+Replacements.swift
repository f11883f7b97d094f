import APTLayerEngine
import APTLayerFleet
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore

extension UpdateDriver {
    /// The largest replacement .deb the driver fetches.
    static let maxReplacementBytes = 512 << 20

    /// Fetches a release's replacement .deb into the agent's upload store (streamed to disk, at
    /// most ``maxReplacementBytes``), checks that it is a well-formed .deb and that its SHA-256 is
    /// the one the signed policy pins, and returns that digest. One already stored is not fetched.
    func fetch(_ replacement: FleetPolicy.Replacement) async -> Result<String, DriverFailure> {
        let uploads = Engine(options: engineOptions).uploads
        if uploads.file(replacement.sha256) != nil { return .success(replacement.sha256) }
        let shown = "replacement \(replacement.url)"
        let incoming: (path: String, descriptor: Int32)
        do { incoming = try uploads.incoming() } catch { return .failure(DriverFailure("\(shown): \(error)")) }
        var open = true
        defer {
            if open { close(incoming.descriptor) }
            unlink(incoming.path)
        }
        do {
            var written = 0
            func append(_ bytes: UnsafeRawBufferPointer) throws {
                written += bytes.count
                guard written <= Self.maxReplacementBytes else { throw DriverFailure("larger than \(Self.maxReplacementBytes >> 20) MiB") }
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(incoming.descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    guard n > 0 else { throw DriverFailure("writing it: \(String(cString: strerror(errno)))") }
                    offset += n
                }
            }
            if let url = URL(string: replacement.url), url.isFileURL {
                guard let handle = FileHandle(forReadingAtPath: url.path) else { throw DriverFailure("cannot read \(url.path)") }
                defer { try? handle.close() }
                while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                    try chunk.withUnsafeBytes { try append($0) }
                }
            } else {
                let response = try await http.execute(HTTPClientRequest(url: replacement.url), timeout: .seconds(600))
                guard response.status.code == 200 else { throw DriverFailure("answered \(response.status.code)") }
                for try await buffer in response.body {
                    try buffer.withUnsafeReadableBytes { try append($0) }
                }
            }
            close(incoming.descriptor)
            open = false
            let path = incoming.path
            let (file, created) = try await Engine.run { _ in try uploads.accept(path) }
            guard file.sha256 == replacement.sha256 else {
                if created { _ = uploads.delete(file.sha256) }
                return .failure(DriverFailure("\(shown) has sha256 \(file.sha256), the policy pins \(replacement.sha256)"))
            }
            return .success(file.sha256)
        } catch let failure as DriverFailure {
            return .failure(DriverFailure("\(shown): \(failure.message)"))
        } catch {
            return .failure(DriverFailure("\(shown): \(error)"))
        }
    }
}
