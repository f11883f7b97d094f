/// A base that is an OCI image, named as rpm-ostree names one:
/// `ostree-unverified-registry:REGISTRY/NAME:TAG[@sha256:HEX]`,
/// `ostree-unverified-image:TRANSPORT:REF` (`docker://…`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`)
/// or `ostree-image-signed:TRANSPORT:REF` (skopeo's signature policy must accept it).
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// How the image is trusted.
    public enum Verification: String, Sendable, Hashable {
        /// The commit checksum the image carries is the trust (as a pinned checksum for a remote).
        case unverified
        /// containers-policy.json must accept the image's signature too.
        case signed
    }

    /// How the image is trusted.
    public var verification: Verification
    /// The image in skopeo's transport syntax, without a pinned digest (`docker://r/n:t`, `oci:/d:t`).
    public var image: String
    /// A pinned manifest digest (`sha256:HEX`), or nil to follow the tag.
    public var digest: String?

    static let prefixes: [(String, Verification, registry: Bool)] = [
        ("ostree-unverified-registry:", .unverified, true),
        ("ostree-unverified-image:", .unverified, false),
        ("ostree-image-signed:", .signed, false),
    ]

    /// Whether `text` starts like an image reference (so it is not an OSTree refspec).
    public static func isImage(_ text: String) -> Bool { prefixes.contains { text.hasPrefix($0.0) } }

    /// Parses an image reference; throws a one-line error for a malformed one.
    public init(parsing text: String) throws {
        guard let (prefix, verification, registry) = Self.prefixes.first(where: { text.hasPrefix($0.0) }) else {
            throw EngineError(
                .invalidArgument,
                "\(text.debugDescription) is not an image reference (ostree-unverified-registry:, ostree-unverified-image: or ostree-image-signed:)")
        }
        guard text.isPrintableASCII(allowingSpace: false), text.utf8.count <= 1024 else {
            throw EngineError(.invalidArgument, "invalid image reference: printable ASCII without spaces only")
        }
        var rest = String(text.dropFirst(prefix.count))
        var digest: String?
        if let at = rest.range(of: "@sha256:") {
            let hex = rest[at.upperBound...]
            guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw EngineError(.invalidArgument, "image digest in \(text.debugDescription) must be sha256: and 64 lowercase hex digits")
            }
            digest = "sha256:\(hex)"
            rest = String(rest[..<at.lowerBound])
        }
        if registry {
            guard !rest.isEmpty, !rest.contains("://"), rest.contains("/") || !rest.contains(":") else {
                throw EngineError(.invalidArgument, "ostree-unverified-registry: takes REGISTRY/NAME[:TAG], not \(rest.debugDescription)")
            }
            rest = "docker://\(rest)"
        }
        let transports = ["docker://", "oci:", "oci-archive:"]
        guard let transport = transports.first(where: { rest.hasPrefix($0) }), rest.count > transport.count else {
            throw EngineError(
                .invalidArgument,
                "image \(rest.debugDescription) must use the docker://, oci: or oci-archive: transport")
        }
        if verification == .signed, !rest.hasPrefix("docker://") {
            throw EngineError(.invalidArgument, "ostree-image-signed: needs a docker:// image (signatures live with a registry)")
        }
        self.verification = verification
        self.image = rest
        self.digest = digest
    }

    /// The reference as written (`ostree-unverified-registry:r/n:t@sha256:…`).
    public var description: String {
        let prefix: String
        var body = image
        switch verification {
        case .signed: prefix = "ostree-image-signed:"
        case .unverified where image.hasPrefix("docker://"):
            prefix = "ostree-unverified-registry:"
            body = String(image.dropFirst("docker://".count))
        case .unverified: prefix = "ostree-unverified-image:"
        }
        return prefix + body + (digest.map { "@\($0)" } ?? "")
    }

    /// The image skopeo reads: by digest when one is pinned (`docker://r/n@sha256:…`, the tag
    /// dropped, as a registry resolves a digest without it). A layout or archive is read by its
    /// name, and the manifest it holds is compared with a pinned digest after reading.
    public func source(digest pinned: String? = nil) -> String {
        guard let pinned = pinned ?? digest, image.hasPrefix("docker://") else { return image }
        let name = String(image.dropFirst("docker://".count))
        // Drop a tag (a colon after the last slash) before adding the digest.
        let lastSlash = name.lastIndex(of: "/") ?? name.startIndex
        let untagged = name[lastSlash...].contains(":") ? String(name[..<name.lastIndex(of: ":")!]) : name
        return "docker://\(untagged)@\(pinned)"
    }
}
