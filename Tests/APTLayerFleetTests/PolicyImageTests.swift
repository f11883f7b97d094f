import Foundation
import TestSupport
import Testing

@testable import APTLayerFleet

/// A release published as an OCI image (`image:` beside `commit:`, docs/images.md): only a
/// reference pinned by manifest digest is accepted.
@Suite("fleet policy image pins", .tags(.fast))
struct PolicyImageTests {
    static func policy(image: String) -> String {
        """
        apiVersion: apt-layer/v1
        kind: FleetPolicy
        fleet: acme
        version: 1
        expires: 2099-01-01T00:00:00Z
        streams:
          stable:
            ref: acme/stable
            release:
              id: "2026.12.1"
              commit: \(String(repeating: "c", count: 64))
              image: "\(image)"
              published: 2026-01-01T00:00:00Z
              open-through-wave: 0
              waves:
                - {name: all, until: 10000, start-after: 0s}
        """
    }

    @Test func aDigestPinnedImageIsAccepted() throws {
        let image = "docker://registry.example:5000/acme/base@sha256:\(String(repeating: "ab", count: 32))"
        let policy = try FleetPolicy.decode(Data(Self.policy(image: image).utf8))
        #expect(policy.streams["stable"]?.release?.image == image)
    }

    @Test(arguments: [
        "docker://registry.example/acme/base:stable",
        "registry.example/acme/base@sha256:\(String(repeating: "ab", count: 32))",
        "docker://registry.example/acme/base@sha256:\(String(repeating: "AB", count: 32))",
        "docker://registry.example/acme/base@sha256:abc",
        "oci-archive:/media/usb/base.ociarchive",
    ])
    func anImageNotPinnedByDigestIsRefused(_ image: String) {
        #expect {
            try FleetPolicy.decode(Data(Self.policy(image: image).utf8))
        } throws: { error in
            "\(error)".contains("release image must be docker://REGISTRY/NAME@sha256:DIGEST")
        }
    }
}
