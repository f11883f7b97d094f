import AsyncHTTPClient
import Foundation
import NIOCore

/// A FleetLock client (the protocol Zincati speaks to airlock and friends): `POST
/// {base}/v1/pre-reboot` to take a reboot slot, `POST {base}/v1/steady-state` to give it back,
/// header `fleet-lock-protocol: true`, body `{"client_params": {"id": …, "group": …}}`; 200 means
/// yes, anything else carries `{"kind": …, "value": …}`.
public struct FleetLockClient: Sendable {
    /// The server's answer.
    public enum Answer: Sendable, Equatable {
        case granted
        /// Refused, with the server's error kind and value (e.g. no free slot).
        case refused(kind: String, value: String)
    }

    let client: HTTPClient
    let base: String
    let id: String
    let group: String

    public init(client: HTTPClient, base: String, id: String, group: String) {
        self.client = client
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.id = id
        self.group = group
    }

    /// Asks for a reboot slot.
    public func preReboot() async throws(DriverFailure) -> Answer { try await call("pre-reboot") }

    /// Releases the slot (a host that holds none is granted too).
    public func steadyState() async throws(DriverFailure) -> Answer { try await call("steady-state") }

    struct Body: Codable {
        struct Params: Codable {
            var id: String
            var group: String
        }
        var clientParams: Params
        enum CodingKeys: String, CodingKey { case clientParams = "client_params" }
    }

    struct ErrorBody: Codable {
        var kind: String
        var value: String
    }

    private func call(_ endpoint: String) async throws(DriverFailure) -> Answer {
        do {
            var request = HTTPClientRequest(url: "\(base)/v1/\(endpoint)")
            request.method = .POST
            request.headers.add(name: "fleet-lock-protocol", value: "true")
            request.headers.add(name: "content-type", value: "application/json")
            let body = try JSONEncoder().encode(Body(clientParams: .init(id: id, group: group)))
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(30))
            var buffer = try await response.body.collect(upTo: 64 << 10)
            if response.status.code == 200 { return .granted }
            let data = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
            if let error = try? JSONDecoder().decode(ErrorBody.self, from: data) { return .refused(kind: error.kind, value: error.value) }
            return .refused(kind: "http-\(response.status.code)", value: String(decoding: data.prefix(200), as: UTF8.self))
        } catch let failure as DriverFailure {
            throw failure
        } catch {
            throw DriverFailure("FleetLock \(endpoint) at \(base): \(error)")
        }
    }
}
