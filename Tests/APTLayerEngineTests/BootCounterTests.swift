import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// GRUB's environment block and the boot counter in it, against GRUB's own `grub-editenv`
/// (grub-common): what it writes we read, what we write it reads.
@Suite("GRUB environment and the boot counter", .tags(.fast))
struct BootCounterTests {
    static func scratch() throws -> String {
        try Shell.run("mktemp -d /tmp/apt-layer-grubenv.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func blocksRoundTripWithGrubEditenv() throws {
        let dir = try Self.scratch()
        defer { _ = try? Shell.run("rm -rf \(dir)") }
        try Shell.run("grub-editenv \(dir)/a create && grub-editenv \(dir)/a set next_entry=2 saved_entry=debian")
        let theirs = try GrubEnvironment(parsing: Array(try #require(FileManager.default.contents(atPath: "\(dir)/a"))))
        #expect(theirs["next_entry"] == "2" && theirs["saved_entry"] == "debian" && theirs["other"] == nil)
        #expect(try theirs.serialized() == Array(try #require(FileManager.default.contents(atPath: "\(dir)/a"))))
        var ours = GrubEnvironment()
        ours["apt_layer_tries"] = "3"
        ours["x"] = "y"
        ours["x"] = nil
        try Data(try ours.serialized()).write(to: URL(fileURLWithPath: "\(dir)/b"))
        #expect(try Shell.run("grub-editenv \(dir)/b list") == "apt_layer_tries=3\n")
        try Shell.run("grub-editenv \(dir)/empty create")
        #expect(try GrubEnvironment().serialized() == Array(try #require(FileManager.default.contents(atPath: "\(dir)/empty"))))
    }

    @Test func badBlocksAndValuesAreRefused() throws {
        #expect(throws: GrubEnvironment.Problem.wrongSize(3)) { try GrubEnvironment(parsing: [1, 2, 3]) }
        #expect(throws: GrubEnvironment.Problem.noSignature) { try GrubEnvironment(parsing: [UInt8](repeating: 35, count: 1024)) }
        var block = GrubEnvironment()
        block["long"] = String(repeating: "v", count: 1100)
        #expect(throws: GrubEnvironment.Problem.self) { try block.serialized() }
        block["long"] = nil
        block["bad name"] = "1"
        #expect(throws: GrubEnvironment.Problem.invalidName("bad name")) { try block.serialized() }
        block["bad name"] = nil
        block["v"] = "a\nb"
        #expect(throws: GrubEnvironment.Problem.invalidValue(name: "v")) { try block.serialized() }
    }

    @Test func armCountAndClearAndAFallBack() throws {
        let dir = try Self.scratch()
        defer { _ = try? Shell.run("rm -rf \(dir)") }
        let counter = BootCounter(path: "\(dir)/grubenv")
        // Missing: unarmed, no problem; arming writes a fresh block GRUB reads.
        #expect(counter.read() == (.unarmed, nil))
        try counter.arm(tries: 3)
        #expect(counter.read().state == .armed(triesLeft: 3, deployment: nil))
        #expect(try Shell.run("grub-editenv \(dir)/grubenv list") == "apt_layer_tries=3\n")
        try counter.arm(tries: 3, deployment: "abc")
        #expect(counter.read().state == .armed(triesLeft: 3, deployment: "abc"))
        // What the menu does at a boot (save_env after counting down), and at zero.
        try Shell.run("grub-editenv \(dir)/grubenv set apt_layer_tries=2 saved_entry=keep")
        #expect(counter.read().state == .armed(triesLeft: 2, deployment: "abc"))
        try Shell.run("grub-editenv \(dir)/grubenv set apt_layer_tries=0 apt_layer_fell_back=1")
        #expect(counter.read().state == .fellBack(deployment: "abc"))
        try counter.clear()
        #expect(counter.read() == (.unarmed, nil))
        #expect(try Shell.run("grub-editenv \(dir)/grubenv list") == "saved_entry=keep\n")
        #expect(throws: EngineError.self) { try counter.arm(tries: 10) }
        // A corrupt block never stops anything: unarmed with the reason, and arming starts anew.
        try Shell.run("head -c 1024 /dev/urandom > \(dir)/grubenv")
        let (state, problem) = counter.read()
        #expect(state == .unarmed && problem?.contains("GRUB Environment Block") == true, "\(problem ?? "")")
        try counter.arm(tries: 2)
        #expect(try Shell.run("grub-editenv \(dir)/grubenv list") == "apt_layer_tries=2\n")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/grubenv.apt-layer-new"))
        #expect(BootCounter(sysroot: "/").path == "/boot/grub/grubenv" && BootCounter(sysroot: "/s").path == "/s/boot/grub/grubenv")
    }
}
