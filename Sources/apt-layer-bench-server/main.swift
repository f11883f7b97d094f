// The ceiling for bench/agent.sh (issue 12): the smallest Hummingbird 2 + NIOSSL server that does
// what apt-layerd's status endpoint does on the wire — mutual TLS with the same certificates and
// client-certificate verification, HTTP/1.1 keep-alive, one GET answered with fixed bytes of known
// length — and nothing else (no router middleware, no OpenAPI layer, no engine). Not installed.
//   apt-layer-bench-server HOST:PORT CERT KEY CLIENT_CA BODY_FILE
import Foundation
import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOSSL

let arguments = CommandLine.arguments
guard arguments.count == 6, let colon = arguments[1].lastIndex(of: ":"), let port = Int(arguments[1][arguments[1].index(after: colon)...]) else {
    FileHandle.standardError.write(Data("usage: apt-layer-bench-server HOST:PORT CERT KEY CLIENT_CA BODY_FILE\n".utf8))
    exit(64)
}
let host = String(arguments[1][..<colon])
let body = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: arguments[5])))
var tls = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[2]).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[3], format: .pem)))
tls.certificateVerification = .noHostnameVerification
tls.trustRoots = .file(arguments[4])
tls.minimumTLSVersion = .tlsv12

struct Fixed: HTTPResponder {
    typealias Context = BasicRequestContext
    let body: ByteBuffer
    func respond(to request: Request, context: Context) async throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}

let app = Application(
    responder: Fixed(body: body), server: try .tls(.http1(), tlsConfiguration: tls),
    configuration: .init(address: .hostname(host, port: port), serverName: "bench"))
try await app.runService()
