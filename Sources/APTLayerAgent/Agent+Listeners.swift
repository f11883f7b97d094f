import Foundation
import Glibc

extension Agent {
    /// Binds and closes each TCP address before the servers start, so an address that is taken or
    /// not local fails the start with one line naming it and the configuration key, instead of the
    /// server's bare `bind(...): Address already in use`.
    static func checkListenable(_ addresses: [(key: String, host: String, port: Int)]) throws {
        for address in addresses {
            if let reason = bindFailure(host: address.host, port: address.port) {
                throw StartError(
                    message:
                        "cannot listen on \(address.host):\(address.port) (\(address.key)): \(reason); change \(address.key) in the configuration or stop what holds it"
                )
            }
        }
    }

    /// Why `host:port` cannot be bound now, or nil when it can.
    static func bindFailure(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else { return "cannot resolve \(host): \(String(cString: gai_strerror(status)))" }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }
}
