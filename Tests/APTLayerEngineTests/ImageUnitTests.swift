import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// The pure parts of OCI images: reference parsing, layer planning, dpkg path mapping and the
/// signature policy check (docs/images.md).
@Suite("OCI image logic", .tags(.fast))
struct ImageUnitTests {
    /// PAX records: only the `SCHILY.xattr.*` ones move, within their own slots, in reverse name
    /// order (libarchive hands them to libostree reversed); values with newlines and `=` survive.
    @Test func xattrRecordsAreReversedInTheirSlots() throws {
        func record(_ key: String, _ value: [UInt8]) -> [UInt8] {
            let body = Array(" \(key)=".utf8) + value + [0x0A]
            var length = body.count + 1
            if String(length).count + body.count != length { length = String(length + 1).count + body.count }
            return Array(String(length).utf8) + body
        }
        let path = record("path", Array("usr/share/a".utf8))
        let access = record("SCHILY.xattr.system.posix_acl_access", [2, 0, 0x0A, 0x3D, 0xFF])
        let defaults = record("SCHILY.xattr.system.posix_acl_default", [2, 0, 1, 0])
        let mtime = record("mtime", Array("0".utf8))
        let capability = record("SCHILY.xattr.security.capability", [1, 0x0A, 2])
        let given = path + access + mtime + defaults + capability
        let reordered = try #require(ImageLayers.reversingXattrs(given))
        #expect(reordered == path + defaults + mtime + access + capability)
        #expect(ImageLayers.reversingXattrs(path + access) == path + access, "one xattr stays")
        #expect(ImageLayers.reversingXattrs(Array("99 path=x\n".utf8)) == nil, "a length past the end does not parse")
    }

    @Test func referencesParseAsRpmOstreeWritesThem() throws {
        let tagged = try ImageReference(parsing: "ostree-unverified-registry:registry.example:5000/debian/base:stable")
        #expect(tagged.image == "docker://registry.example:5000/debian/base:stable")
        #expect(tagged.verification == .unverified && tagged.digest == nil)
        #expect(tagged.description == "ostree-unverified-registry:registry.example:5000/debian/base:stable")
        let hex = String(repeating: "ab", count: 32)
        let pinned = try ImageReference(parsing: "ostree-unverified-registry:registry.example:5000/debian/base:stable@sha256:\(hex)")
        #expect(pinned.digest == "sha256:\(hex)")
        #expect(pinned.source() == "docker://registry.example:5000/debian/base@sha256:\(hex)", "the tag dropped, the port kept")
        #expect(pinned.description == "ostree-unverified-registry:registry.example:5000/debian/base:stable@sha256:\(hex)")
        let archive = try ImageReference(parsing: "ostree-unverified-image:oci-archive:/media/usb/base.ociarchive")
        #expect(archive.image == "oci-archive:/media/usb/base.ociarchive" && archive.source() == archive.image)
        let signed = try ImageReference(parsing: "ostree-image-signed:docker://registry.example/base:1")
        #expect(signed.verification == .signed && signed.description == "ostree-image-signed:docker://registry.example/base:1")
        #expect(try Operand.checkRefspec("ostree-unverified-registry:r.example/b:1") == ())
    }

    @Test func signaturePolicyScopesGoFromTheImageToTheTransportDefault() {
        #expect(
            Engine.policyScopes(for: "registry.example.com:5000/acme/base:stable") == [
                "registry.example.com:5000/acme/base", "registry.example.com:5000/acme",
                "registry.example.com:5000", "*.example.com", "*.com", "",
            ])
        #expect(Engine.policyScopes(for: "127.0.0.1:5000/base") == ["127.0.0.1:5000/base", "127.0.0.1:5000", ""])
    }

    @Test(arguments: [
        ("ostree-unverified-registry:", "REGISTRY/NAME"),
        ("ostree-unverified-registry:docker://r/b:1", "REGISTRY/NAME"),
        ("ostree-unverified-image:dir:/x", "transport"),
        ("ostree-unverified-registry:r/b@sha256:ABC", "64 lowercase hex"),
        ("ostree-image-signed:oci:/x", "docker://"),
        ("ostree-unverified-registry:r/b c", "printable ASCII"),
    ])
    func malformedReferencesAreRefusedWithTheReason(_ text: String, _ reason: String) {
        #expect(throws: EngineError.self) { try ImageReference(parsing: text) }
        let message =
            (try? ImageReference(parsing: text)).map { _ in "" }
            ?? { () -> String in
                do { _ = try ImageReference(parsing: text) } catch { return "\(error)" }
                return ""
            }()
        #expect(message.contains(reason), "\(text): \(message)")
    }

    @Test func bigPackagesGetLayersAndTheRestShareStableBuckets() {
        var sizes: [String: Int] = [:]
        for i in 0..<100 { sizes["pkg\(i)"] = 1000 + i }
        let plan = ImageLayers.plan(sizes: sizes, maxLayers: 20)
        #expect(plan.groups.count <= 17, "20 layers less the commit, unpackaged and dpkg status ones")
        #expect(Set(plan.groups.flatMap { $0 }) == Set(sizes.keys), "every package in exactly one group")
        #expect(plan.groups.flatMap { $0 }.count == sizes.count)
        // The nine largest (17 groups less the 8 buckets) have a layer of their own.
        for i in 91..<100 { #expect(plan.groups.contains(["pkg\(i)"])) }
        #expect(!plan.groups.contains(["pkg90"]))
        // A size change of a small package (not into the largest nine) does not move anything.
        var changed = sizes
        changed["pkg3"] = 1050
        #expect(ImageLayers.plan(sizes: changed, maxLayers: 20) == plan)
        // Few packages: one layer each.
        #expect(ImageLayers.plan(sizes: ["a": 1, "b": 2], maxLayers: 64).groups == [["a"], ["b"]])
    }

    @Test func thePreviousGroupingIsKept() {
        let previous = [["a", "b"], ["c"]]
        let plan = ImageLayers.plan(sizes: ["a": 5, "b": 1_000_000, "c": 3, "d": 9], previous: previous, maxLayers: 64)
        #expect(plan.groups == [["a", "b"], ["c"], ["d"]])
        // A package gone from the base leaves its group; an emptied group goes.
        #expect(ImageLayers.plan(sizes: ["a": 5], previous: previous, maxLayers: 64).groups == [["a"]])
    }

    @Test func theDpkgStatusFilesAreTheirOwnLayer() {
        #expect(ImageLayers.isDpkgState("usr/share/dpkg/database/status"))
        #expect(ImageLayers.isDpkgState("var/lib/dpkg/status-old"))
        #expect(!ImageLayers.isDpkgState("usr/share/dpkg/database/info/libssl3:amd64.list"))
        #expect(!ImageLayers.isDpkgState("usr/share/dpkg/database/"))
    }

    @Test func dpkgPathsMapToWhereTheBaseHoldsThem() {
        #expect(ImageLayers.normalize("/bin/ls") == "usr/bin/ls")
        #expect(ImageLayers.normalize("/etc/ssl/openssl.cnf") == "usr/etc/ssl/openssl.cnf")
        #expect(ImageLayers.normalize("/usr/lib/x86_64-linux-gnu/libssl.so.3") == "usr/lib/x86_64-linux-gnu/libssl.so.3")
        #expect(ImageLayers.normalize("/.") == "")
    }

    @Test func aSignedImageNeedsAPolicyThatChecksSignatures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = try ImageReference(parsing: "ostree-image-signed:docker://registry.example/debian/base:1")
        func check(_ policy: String) -> String? {
            try? policy.write(toFile: "\(dir)/policy.json", atomically: true, encoding: .utf8)
            do { try Engine.checkSignaturePolicy(for: image, path: "\(dir)/policy.json") } catch { return "\(error)" }
            return nil
        }
        // Debian's default policy accepts anything: refused.
        #expect(check(#"{"default":[{"type":"insecureAcceptAnything"}]}"#)?.contains("without a signature") == true)
        // A signedBy requirement for the registry (a scope above the image) passes.
        #expect(
            check(
                #"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}}}"#
            ) == nil)
        // A more specific scope that accepts anything wins over the registry's requirement.
        #expect(
            check(
                #"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}],"registry.example/debian/base":[{"type":"insecureAcceptAnything"}]}}}"#
            )?.contains("insecureAcceptAnything") == true)
        #expect(check("not json")?.contains("does not parse") == true)
        // A tag's own scope does not count: the image is copied by digest, under the repository's.
        #expect(
            check(
                #"{"default":[{"type":"reject"}],"transports":{"docker":{"registry.example/debian/base:1":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}],"registry.example/debian/base":[{"type":"insecureAcceptAnything"}]}}}"#
            )?.contains("insecureAcceptAnything") == true)
    }
}
