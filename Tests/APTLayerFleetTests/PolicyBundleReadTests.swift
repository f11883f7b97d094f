import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerFleet

/// Reading a bundle in place (`TarArchive`, `PolicyBundle.read`): GNU tar's own archives, PAX and
/// GNU long names, a member copied out byte for byte, and archives that are cut, not tar, or not
/// bundles refused with one line.
@Suite("bundles read in place", .tags(.fast))
struct PolicyBundleReadTests {
    /// A directory holding a bundle-shaped tree: the policy and its signature, a layout whose blob
    /// has a name longer than ustar's 100 bytes, and a 3 MiB blob.
    static func tree() throws -> String {
        let dir = NSTemporaryDirectory() + "bundle-read.\(UUID().uuidString)"
        let deep = "\(dir)/tree/blobs/sha256/\(String(repeating: "d", count: 40))/\(String(repeating: "e", count: 64))"
        try FileManager.default.createDirectory(atPath: "\(dir)/tree/apt-layer", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        try Data("version: 7\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/tree/apt-layer/policy.yaml"))
        try Data("-----BEGIN SSH SIGNATURE-----\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/tree/apt-layer/policy.yaml.sig"))
        try Data("long".utf8).write(to: URL(fileURLWithPath: "\(deep)/blob"))
        var big = Data(count: 3 << 20)
        for i in stride(from: 0, to: big.count, by: 4093) { big[i] = UInt8(truncatingIfNeeded: i / 4093) }
        try big.write(to: URL(fileURLWithPath: "\(dir)/tree/big"))
        return dir
    }

    @Test(arguments: ["posix", "gnu"]) func membersAreFoundAndCopiedByteForByte(format: String) throws {
        let dir = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Shell.run("tar --format=\(format) -C \(dir)/tree -cf \(dir)/b.bundle apt-layer blobs ./big")
        let archive = try TarArchive(path: "\(dir)/b.bundle")
        let long = "blobs/sha256/\(String(repeating: "d", count: 40))/\(String(repeating: "e", count: 64))/blob"
        #expect(String(decoding: try archive.read(long, limit: 100), as: UTF8.self) == "long")
        #expect(archive.members["big"]?.size == 3 << 20, "a ./ prefix is dropped")
        try archive.copy("big", to: "\(dir)/copied")
        #expect(FileManager.default.contents(atPath: "\(dir)/copied") == FileManager.default.contents(atPath: "\(dir)/tree/big"))
        #expect(throws: TarArchive.ReadError.self) { try archive.read("big", limit: 1 << 20) }
        #expect(throws: TarArchive.ReadError.self) { try archive.read("blobs", limit: 100) }
        let (policy, signature) = try PolicyBundle.read("\(dir)/b.bundle")
        #expect(String(decoding: policy, as: UTF8.self) == "version: 7\n")
        #expect(signature == "-----BEGIN SSH SIGNATURE-----\n")
    }

    @Test func cutAndForeignFilesAreRefusedInOneLine() throws {
        let dir = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Shell.run("tar --format=posix -C \(dir)/tree -cf \(dir)/b.bundle big apt-layer")
        // Cut inside the big member: its header is whole, its bytes are not.
        try Shell.run("head -c 2000000 \(dir)/b.bundle > \(dir)/cut.bundle")
        let cut = try TarArchive(path: "\(dir)/cut.bundle")
        let error = #expect(throws: TarArchive.ReadError.self) { try cut.copy("big", to: "\(dir)/copied") }
        #expect(error?.description == "\(dir)/cut.bundle: big is truncated")
        #expect(
            throws: PolicyBundle.ReadError(
                description: "\(dir)/cut.bundle is not an apt-layer bundle: no apt-layer/policy.yaml and apt-layer/policy.yaml.sig")
        ) {
            try PolicyBundle.read("\(dir)/cut.bundle")
        }
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: "\(dir)/text.bundle"))
        #expect(throws: PolicyBundle.ReadError(description: "\(dir)/text.bundle is not a bundle (not a tar archive)")) {
            try PolicyBundle.read("\(dir)/text.bundle")
        }
        #expect(throws: PolicyBundle.ReadError(description: "cannot open bundle \(dir)/none.bundle")) { try PolicyBundle.read("\(dir)/none.bundle") }
    }
}
