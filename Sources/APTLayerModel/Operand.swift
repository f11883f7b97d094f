/// The checks every layer runs on what an operation names (packages, files, uploads, refs,
/// remotes) before anything runs: the API and the CLI refuse a bad operand with the engine's own
/// words, and the engine checks again.
public enum Operand {
    /// Prefix of an install item that names an upload (`sha256:HEX`).
    public static let uploadPrefix = "sha256:"

    /// The digest an install item names (`sha256:HEX`), or nil when it names something else.
    /// Throws when it starts like a reference but is not 64 lowercase hex digits.
    public static func uploadDigest(in item: String) throws -> String? {
        guard item.hasPrefix(uploadPrefix) else { return nil }
        let hex = item.dropFirst(uploadPrefix.count)
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw EngineError(.invalidArgument, "package reference \(item.debugDescription) must be sha256: and 64 lowercase hex digits")
        }
        return String(hex)
    }

    /// Checks that a host path may name a package file: absolute, printable, no `..`.
    public static func checkHostPath(_ file: String) throws {
        guard file.hasPrefix("/"), !file.containsControlCharacters,
            !file.split(separator: "/").contains("..")
        else {
            throw EngineError(.invalidArgument, "package file \(file.debugDescription) must be an absolute path without control characters or ..")
        }
    }

    /// Refuses refspecs that are not a plain `REF`, `REMOTE:REF` or an ``ImageReference``, and
    /// apt-layer's own refs.
    public static func checkRefspec(_ refspec: String) throws {
        if ImageReference.isImage(refspec) {
            _ = try ImageReference(parsing: refspec)
            return
        }
        guard !refspec.isEmpty, refspec.isPrintableASCII(allowingSpace: false) else {
            throw EngineError(.invalidArgument, "invalid ref \(refspec.debugDescription): printable ASCII without spaces only")
        }
        let ref = refspec.split(separator: ":", maxSplits: 1).last.map(String.init) ?? refspec
        guard !ref.hasPrefix("apt-layer/"), !ref.hasPrefix("ostree/") else {
            throw EngineError(.invalidArgument, "\(refspec) is an internal ref, not a base to rebase onto")
        }
    }

    /// Whether an install item names a .deb on the host (ends in `.deb` or has a slash) rather than
    /// a package or an upload. Every layer asks this one question the same way.
    public static func isHostPath(_ item: String) -> Bool { item.hasSuffix(".deb") || item.contains("/") }

    /// Checks one `install` item before anything runs: a package name, `sha256:HEX` naming an
    /// upload, or an absolute path to a .deb.
    public static func checkPackageItem(_ item: String) throws {
        if try uploadDigest(in: item) != nil { return }
        if isHostPath(item) { try checkHostPath(item) } else { try checkPackageName(item) }
    }

    /// A suite or codename of the apt sources (`bookworm-security`, `noble-updates`).
    public static func checkSuite(_ suite: String) throws {
        guard !suite.isEmpty, suite.count <= 64, suite.first!.isLetter,
            suite.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || "-.+_".contains($0) })
        else {
            throw EngineError(
                .invalidArgument,
                "invalid suite \(suite.isPrintableASCII(allowingSpace: false) ? suite : "name"): a suite is a name such as bookworm-security")
        }
    }

    /// Checks a Debian package name (what uninstall and override take).
    public static func checkPackageName(_ name: String) throws {
        let allowed = name.allSatisfy { $0.isLowercase || $0.isNumber || "+-.:".contains($0) }
        guard !name.isEmpty, allowed, name.first?.isLetter == true || name.first?.isNumber == true else {
            throw EngineError(.invalidArgument, "invalid package name: \(name)")
        }
    }

    /// Refuses a remote name that is not `[A-Za-z0-9._-]+` and a URL that is not a printable
    /// http, https or file URL.
    public static func checkRemote(name: String, url: String) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw EngineError(.invalidArgument, "invalid remote name \(name.debugDescription)")
        }
        guard url.isPrintableASCII(allowingSpace: false), url.utf8.count <= 2048,
            ["http://", "https://", "file:///"].contains(where: { url.hasPrefix($0) })
        else { throw EngineError(.invalidArgument, "invalid remote URL \(url.debugDescription) (http, https or file)") }
    }

    /// ``checkRemote(name:url:)`` for the remote of a `REMOTE:REF` refspec.
    public static func checkRemote(refspec: String, url: String) throws {
        guard let colon = refspec.firstIndex(of: ":") else {
            throw EngineError(.invalidArgument, "a remote URL needs a REMOTE:REF refspec, not \(refspec.debugDescription)")
        }
        try checkRemote(name: String(refspec[..<colon]), url: url)
    }
}
