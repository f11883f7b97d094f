import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Fetches the policy and its detached signature over HTTP(S), with `If-None-Match`, a size cap and
/// the fleet's TLS settings.
public struct PolicyFetcher: Sendable {
    /// The most policy bytes read (the policy format's limit).
    public static let maxPolicyBytes = 1 << 20
    /// The most signature bytes read (a few signers' armoured blocks).
    public static let maxSignatureBytes = 64 << 10

    /// What a fetch found.
    public enum Fetched: Sendable, Equatable {
        /// 304: the policy has the entity tag we sent.
        case notModified
        /// New bytes, their signature and entity tag.
        case document(bytes: Data, signature: String, etag: String?)
    }

    let client: HTTPClient
    let policyURL: String
    let signatureURL: String
    let userAgent: String

    public init(client: HTTPClient, policyURL: String, signatureURL: String, userAgent: String) {
        self.client = client
        self.policyURL = policyURL
        self.signatureURL = signatureURL
        self.userAgent = userAgent
    }

    /// Fetches the policy (conditionally, with `etag`) and, when it changed, its signature.
    public func fetch(etag: String?) async throws(DriverFailure) -> Fetched {
        var headers: [(String, String)] = [("user-agent", userAgent)]
        if let etag { headers.append(("if-none-match", etag)) }
        let (status, body, responseHeaders) = try await get(policyURL, headers: headers, limit: Self.maxPolicyBytes)
        if status == 304 { return .notModified }
        guard status == 200 else { throw DriverFailure("policy server answered HTTP \(status) for \(policyURL)") }
        let (sigStatus, signature, _) = try await get(signatureURL, headers: [("user-agent", userAgent)], limit: Self.maxSignatureBytes)
        guard sigStatus == 200 else { throw DriverFailure("policy server answered HTTP \(sigStatus) for \(signatureURL)") }
        return .document(bytes: body, signature: String(decoding: signature, as: UTF8.self), etag: responseHeaders.first(name: "etag"))
    }

    private func get(_ url: String, headers: [(String, String)], limit: Int) async throws(DriverFailure) -> (Int, Data, HTTPHeaders) {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await client.execute(request, timeout: .seconds(60))
            var buffer: ByteBuffer
            do {
                buffer = try await response.body.collect(upTo: limit)
            } catch is NIOTooManyBytesError {
                throw DriverFailure("\(url) is more than the \(limit) bytes allowed")
            }
            return (Int(response.status.code), Data(buffer.readBytes(length: buffer.readableBytes) ?? []), response.headers)
        } catch let failure as DriverFailure {
            throw failure
        } catch {
            throw DriverFailure("cannot fetch \(url): \(error)")
        }
    }
}
