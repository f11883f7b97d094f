import Foundation
import Glibc
import HTTPTypes
import OpenAPIRuntime
import Synchronization

/// The generated client's transport on the agent's local socket (`unix:PATH`, the default on a
/// host): plain HTTP/1.1, one connection per request (`Connection: close`), the answer read by a
/// thread of its own with blocking reads, so a transaction's event stream never holds a thread of
/// the concurrency pool. AsyncHTTPClient (still the transport over mutual TLS) starts event loops
/// and a connection pool for every command; on the socket that was a third of a `status`.
struct UnixSocketTransport: ClientTransport {
    /// The socket's path.
    let path: String

    /// A failure below HTTP on the socket: the call that failed and its C error, or an answer that
    /// ended early or was not HTTP.
    enum Failure: Error, CustomStringConvertible {
        case call(String, errno: Int32)
        case closed
        case malformed(String)

        var description: String {
            switch self {
            case .call(let call, let code): "\(call): \(String(cString: strerror(code)))"
            case .closed: "the connection closed before the answer ended"
            case .malformed(let what): "not an HTTP answer: \(what)"
            }
        }

        /// The CLI's one line for it, naming the agent at `address` and the likely fix.
        func message(address: String) -> String {
            switch self {
            case .call(_, ECONNREFUSED):
                "cannot connect to the agent at \(address): connection refused (is apt-layerd running and listening there?)"
            case .call(_, ENOENT): "cannot connect to the agent at \(address): no such socket"
            case .call(_, EACCES): "cannot connect to the agent at \(address): permission denied (run as root or a user with a role)"
            case .call(_, EAGAIN), .call(_, ETIMEDOUT): "cannot connect to the agent at \(address): timed out (is apt-layerd stuck?)"
            case .closed, .call(_, ECONNRESET), .call(_, EPIPE): "the agent at \(address) closed the connection (did it restart?)"
            default: "cannot reach the agent at \(address): \(description)"
            }
        }
    }

    func send(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String) async throws -> (HTTPResponse, HTTPBody?) {
        let connection = try SocketConnection(path: path)
        do {
            try await connection.send(request, body: body)
        } catch {
            connection.shutDown()
            connection.close()
            throw error
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { head in
                let reader = Thread { connection.readAnswer(toHead: request.method == .head, head: head) }
                reader.name = "agent-socket"
                reader.start()
            }
        } onCancel: {
            connection.shutDown()
        }
    }
}

/// One connected socket. The request is written by the sending task, then only the reader thread
/// reads it and closes it; ``shutDown()`` may come from any thread (a cancelled task, a consumer
/// that dropped the body) and wakes a blocked read. The descriptor is closed once, under the lock,
/// so a late shutdown never reaches a descriptor number the process has reused.
final class SocketConnection: Sendable {
    private let fd: Int32
    private let closed = Mutex(false)

    init(path: String) throws(UnixSocketTransport.Failure) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .call("connect \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .call("socket", errno: errno) }
        // An agent whose accept queue is full would block connect(2) for ever; a Unix socket's
        // connect (and a write the agent does not drain) gives up after the send time-out.
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected != 0 {
            let code = errno
            Glibc.close(fd)
            throw .call("connect \(path)", errno: code)
        }
    }

    /// Wakes a blocked read or write (both directions end); harmless once closed.
    func shutDown() {
        closed.withLock { if !$0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    /// Closes the descriptor, once.
    func close() {
        closed.withLock {
            if !$0 { _ = Glibc.close(fd) }
            $0 = true
        }
    }

    // MARK: The request

    /// Writes the request line, the headers and the body (framed by its known length, else
    /// chunked).
    func send(_ request: HTTPRequest, body: HTTPBody?) async throws {
        var head = "\(request.method.rawValue) \(request.path ?? "/") HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        for field in request.headerFields where ![.connection, .contentLength, .transferEncoding].contains(field.name) {
            head += "\(field.name.rawName): \(field.value)\r\n"
        }
        var chunked = false
        switch body?.length {
        case .known(let length): head += "Content-Length: \(length)\r\n"
        case .unknown:
            head += "Transfer-Encoding: chunked\r\n"
            chunked = true
        case nil: if [.post, .put, .patch].contains(request.method) { head += "Content-Length: 0\r\n" }
        }
        try write(Array((head + "\r\n").utf8))
        guard let body else { return }
        for try await chunk in body where !chunk.isEmpty {
            if chunked { try write(Array("\(String(chunk.count, radix: 16))\r\n".utf8)) }
            try write(Array(chunk))
            if chunked { try write(Array("\r\n".utf8)) }
        }
        if chunked { try write(Array("0\r\n\r\n".utf8)) }
    }

    /// Blocking, whole; MSG_NOSIGNAL, so an agent that went away is EPIPE, not SIGPIPE.
    private func write(_ bytes: [UInt8]) throws(UnixSocketTransport.Failure) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw .call("send", errno: errno)
            }
            offset += sent
        }
    }

    // MARK: The answer (on the reader thread)

    /// Reads the status line and headers, resumes `head` with the response and its body, then
    /// feeds the body (by Content-Length, chunked, or to the end) and closes the socket.
    func readAnswer(toHead isHead: Bool, head: CheckedContinuation<(HTTPResponse, HTTPBody?), any Error>) {
        var input = SocketInput(fd: fd)
        defer { close() }
        let response: HTTPResponse
        do { response = try input.readHead() } catch {
            head.resume(throwing: error)
            return
        }
        let code = response.status.code
        let length = response.headerFields[.contentLength].flatMap { Int($0) }
        if let length, length < 0 {
            head.resume(throwing: UnixSocketTransport.Failure.malformed("Content-Length \(length)"))
            return
        }
        let chunked = response.headerFields[.transferEncoding]?.lowercased().contains("chunked") ?? false
        if isHead || (100..<200).contains(code) || code == 204 || code == 304 {
            head.resume(returning: (response, nil))
            return
        }
        let (stream, body) = AsyncThrowingStream<ArraySlice<UInt8>, any Error>.makeStream()
        body.onTermination = { [self] ending in if case .cancelled = ending { shutDown() } }
        head.resume(
            returning: (
                response, HTTPBody(stream, length: chunked ? .unknown : length.map { .known(Int64($0)) } ?? .unknown, iterationBehavior: .single)
            ))
        do {
            if chunked {
                try input.readChunked { body.yield($0) }
            } else if let length {
                try input.read(exactly: length) { body.yield($0) }
            } else {
                try input.readToEnd { body.yield($0) }
            }
            body.finish()
        } catch { body.finish(throwing: error) }
    }
}

/// Buffered blocking reads from the socket, with the little of HTTP/1.1 an answer needs.
struct SocketInput {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    init(fd: Int32) { self.fd = fd }

    private var available: ArraySlice<UInt8> { buffer[start...] }

    /// One read(2) onto the buffer; false at the end of the stream.
    private mutating func fill() throws(UnixSocketTransport.Failure) -> Bool {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .call("read", errno: errno)
            }
            buffer.append(contentsOf: chunk[..<count])
            return count > 0
        }
    }

    /// A line without its CRLF (the head's lines, a chunk's size).
    private mutating func line(limit: Int = 65536) throws(UnixSocketTransport.Failure) -> String {
        while true {
            if let end = available.firstIndex(of: 10) {
                var line = buffer[start..<end]
                if line.last == 13 { line = line.dropLast() }
                start = end + 1
                return String(decoding: line, as: UTF8.self)
            }
            guard available.count < limit else { throw .malformed("a line over \(limit) bytes") }
            guard try fill() else { throw .closed }
        }
    }

    /// The status line and the header fields, up to the empty line.
    mutating func readHead() throws(UnixSocketTransport.Failure) -> HTTPResponse {
        while true {
            let response = try readOneHead()
            // An interim answer (100 Continue, 103 Early Hints) comes before the real one.
            if !(100..<200).contains(response.status.code) || response.status.code == 101 { return response }
        }
    }

    /// One status line and its header fields.
    private mutating func readOneHead() throws(UnixSocketTransport.Failure) -> HTTPResponse {
        let status = try line()
        let parts = status.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...599).contains(code) else {
            throw .malformed("status line \(status.prefix(80))")
        }
        var fields = HTTPFields()
        while true {
            let header = try line()
            if header.isEmpty { break }
            guard let colon = header.firstIndex(of: ":"), let name = HTTPField.Name(String(header[..<colon])) else {
                throw .malformed("header line \(header.prefix(80))")
            }
            fields.append(HTTPField(name: name, value: header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return HTTPResponse(status: .init(code: code, reasonPhrase: parts.count > 2 ? String(parts[2]) : ""), headerFields: fields)
    }

    /// `count` bytes, handed on as they arrive.
    mutating func read(exactly count: Int, _ deliver: (ArraySlice<UInt8>) -> Void) throws(UnixSocketTransport.Failure) {
        var left = count
        while left > 0 {
            if available.isEmpty, try !fill() { throw .closed }
            let piece = available.prefix(left)
            start += piece.count
            left -= piece.count
            deliver(ArraySlice(Array(piece)))
        }
    }

    /// Everything up to the end of the stream.
    mutating func readToEnd(_ deliver: (ArraySlice<UInt8>) -> Void) throws(UnixSocketTransport.Failure) {
        repeat {
            if !available.isEmpty { deliver(ArraySlice(Array(available))) }
            start = buffer.count
        } while try fill()
    }

    /// A chunked body: each chunk's data handed on as it arrives, then the trailer skipped.
    mutating func readChunked(_ deliver: (ArraySlice<UInt8>) -> Void) throws(UnixSocketTransport.Failure) {
        while true {
            let sizeLine = try line()
            guard let size = Int(sizeLine.prefix { $0 != ";" }.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw .malformed("chunk size \(sizeLine.prefix(40))")
            }
            if size == 0 {
                while try !line().isEmpty {}
                return
            }
            try read(exactly: size, deliver)
            guard try line().isEmpty else { throw .malformed("no CRLF after a chunk") }
        }
    }
}
