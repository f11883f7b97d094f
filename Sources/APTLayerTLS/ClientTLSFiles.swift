import NIOSSL

/// The PEM files a client presents and trusts: the one type behind every TLS client apt-layer
/// makes (the CLI to an agent, the update driver to the policy and FleetLock servers, telemetry to
/// its collector and countme endpoints).
public struct ClientTLSFiles: Sendable, Equatable {
    /// CA bundle to trust instead of the system's.
    public var ca: String?
    /// Client certificate (PEM chain).
    public var certificate: String?
    /// The certificate's private key (PEM).
    public var key: String?

    /// Creates the set; nil everywhere is the system's trust and no client certificate.
    public init(ca: String? = nil, certificate: String? = nil, key: String? = nil) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }

    /// Which file could not be used, and why.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// The file's role.
        public enum File: String, Sendable {
            case ca, certificate, key
        }
        public var file: File
        public var path: String
        /// What the TLS library said.
        public var cause: String
        public var description: String { "\(file.rawValue) \(path): \(cause)" }
    }

    /// These files with `other`'s where it names one (a section's own files over shared ones).
    public func overlaid(by other: ClientTLSFiles) -> ClientTLSFiles {
        ClientTLSFiles(ca: other.ca ?? ca, certificate: other.certificate ?? certificate, key: other.key ?? key)
    }

    /// A client configuration, TLS 1.2 or newer, trusting ``ca`` (else the system's roots) and
    /// presenting ``certificate`` and ``key`` when `identity` is true and both are named.
    public func configuration(identity: Bool = true) throws(Failure) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let ca {
            do { _ = try NIOSSLCertificate.fromPEMFile(ca) } catch { throw Failure(file: .ca, path: ca, cause: "\(error)") }
            tls.trustRoots = .file(ca)
        }
        guard identity else { return tls }
        if let certificate {
            do { tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) } } catch {
                throw Failure(file: .certificate, path: certificate, cause: "\(error)")
            }
        }
        if let key {
            do { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) } catch {
                throw Failure(file: .key, path: key, cause: "\(error)")
            }
        }
        return tls
    }
}
