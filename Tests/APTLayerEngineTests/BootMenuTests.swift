import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// The boot menu's scripts run by real GRUB 2.06: `grub-emu` (the emulator platform of the same
/// GRUB, package grub-emu) reads a small ext4 image holding `compose image`'s own `grub/grub.cfg`
/// and `grub/grubenv`, runs it as at a boot (`load_env`, the count-down, `save_env` into the
/// image's blocks), and records the entry it chose in the block; the test reads the block back
/// with debugfs. Likewise libostree's `syslinux.cfg` read as GRUB script. The VM tier runs the same
/// scripts on BIOS and under Secure Boot.
@Suite("boot menu in GRUB", .tags(.fast))
struct BootMenuTests {
    /// One boot: the image holds `block` (nil: no grubenv at all) and the image's grub.cfg; returns
    /// the entry GRUB chose and the block's variables afterwards.
    static func boot(block: [UInt8]?) throws -> (entry: String?, after: [String: String]) {
        let dir = try Shell.run("mktemp -d /tmp/apt-layer-grub.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Shell.run("rm -rf \(dir)") }
        try FileManager.default.createDirectory(atPath: "\(dir)/fs/grub", withIntermediateDirectories: true)
        try ImageBuilder.grubConfiguration.write(toFile: "\(dir)/fs/grub/grub.cfg", atomically: true, encoding: .utf8)
        // The probe's own block records what GRUB chose, beside the one under test.
        try Data(try GrubEnvironment().serialized()).write(to: URL(fileURLWithPath: "\(dir)/fs/grub/probe"))
        if let block { try Data(block).write(to: URL(fileURLWithPath: "\(dir)/fs/grub/grubenv")) }
        try Shell.run(
            "truncate -s 8M \(dir)/disk.img && mkfs.ext4 -q -F -d \(dir)/fs \(dir)/disk.img && echo '(hd0) \(dir)/disk.img' > \(dir)/device.map")
        let commands = [
            "set root=hd0", "set prefix=(hd0)/grub", "source (hd0)/grub/grub.cfg",
            "set probe_default=${default}", "save_env --file (hd0)/grub/probe probe_default", "halt",
        ]
        try commands.joined(separator: "\n").appending("\n").write(toFile: "\(dir)/commands", atomically: true, encoding: .utf8)
        try Shell.run("timeout 30 grub-emu -m \(dir)/device.map -r hd0 -d /usr/lib/grub/x86_64-emu < \(dir)/commands > \(dir)/out 2>&1")
        let probe = try GrubEnvironment(parsing: Array(try Shell.run("debugfs -R 'cat /grub/probe' \(dir)/disk.img 2>/dev/null").utf8))
        var after: [String: String] = [:]
        if block != nil {
            let text = try Shell.run("debugfs -R 'cat /grub/grubenv' \(dir)/disk.img 2>/dev/null")
            if let parsed = try? GrubEnvironment(parsing: Array(text.utf8)) {
                for name in [BootCounter.triesVariable, BootCounter.fellBackVariable, BootCounter.deploymentVariable] { after[name] = parsed[name] }
            }
        }
        return (probe["probe_default"], after)
    }

    static func block(_ variables: [String: String]) throws -> [UInt8] {
        var block = GrubEnvironment()
        for (name, value) in variables { block[name] = value }
        return try block.serialized()
    }

    /// Armed with N tries: each boot saves N−1 and boots entry 0 (with entry 1 as GRUB's own
    /// fallback); at 0 the menu saves `fell_back` and boots entry 1, and keeps doing so.
    @Test(arguments: [(9, "8"), (3, "2"), (1, "0")])
    func anArmedCounterCountsDown(tries: Int, left: String) throws {
        let (entry, after) = try Self.boot(block: try Self.block(["apt_layer_tries": String(tries), "apt_layer_deployment": "abc.0"]))
        #expect(entry == "0")
        #expect(after == ["apt_layer_tries": left, "apt_layer_deployment": "abc.0"])
    }

    @Test func spentTriesFallBackAndStayFallenBack() throws {
        let (entry, after) = try Self.boot(block: try Self.block(["apt_layer_tries": "0", "apt_layer_deployment": "abc.0"]))
        #expect(entry == "1")
        #expect(after == ["apt_layer_tries": "0", "apt_layer_fell_back": "1", "apt_layer_deployment": "abc.0"])
        let (again, unchanged) = try Self.boot(block: try Self.block(after))
        #expect(again == "1" && unchanged == after)
    }

    /// Unarmed, missing, corrupt or nonsense blocks boot the default entry and are left alone: a
    /// broken block never stops a host from booting.
    @Test func anythingElseBootsTheDefaultEntry() throws {
        #expect(try Self.boot(block: try Self.block([:])) == ("0", [:]))
        #expect(try Self.boot(block: nil).entry == "0")
        #expect(try Self.boot(block: try Self.block(["apt_layer_tries": "x"])) == ("0", ["apt_layer_tries": "x"]))
        var garbage = [UInt8](repeating: 0x41, count: 1024)
        garbage[0] = 0x42
        #expect(try Self.boot(block: garbage).entry == "0")
        #expect(try Self.boot(block: [UInt8](repeating: 0x23, count: 100)).entry == "0")
    }

    /// libostree's `syslinux.cfg` (as 2022.7 writes it: `TIMEOUT`, `DEFAULT`, then per entry
    /// `LABEL` and tab-indented `KERNEL`, `INITRD`, `APPEND`) read by ``BootMenu/entriesScript``'s
    /// functions: every entry, in order, with its title, kernel, initramfs and arguments. (grub-emu
    /// has no `linux` command, so the entries are recorded instead of added to the menu; booting
    /// them is the VM tier's.)
    @Test func libostreesSyslinuxConfigIsReadAsGRUBScript() throws {
        let syslinux = """
            TIMEOUT 3

            DEFAULT Debian GNU/Linux 12 (bookworm) 2026.12.2 (ostree:0)
            LABEL Debian GNU/Linux 12 (bookworm) 2026.12.2 (ostree:0)
            \tKERNEL /ostree/debian-abc/vmlinuz-6.1.0-57-amd64
            \tINITRD /ostree/debian-abc/initramfs-6.1.0-57-amd64.img
            \tAPPEND ostree=/ostree/boot.1/debian/abc/0 root=UUID=a9a4 rw panic=10 console=ttyS0,115200n8
            LABEL Debian GNU/Linux 12 (bookworm) 2026.12.1 (ostree:1)
            \tKERNEL /ostree/debian-def/vmlinuz-6.1.0-56-amd64
            \tAPPEND ostree=/ostree/boot.1/debian/def/0 root=UUID=a9a4 rw

            """
        let dir = try Shell.run("mktemp -d /tmp/apt-layer-grub.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Shell.run("rm -rf \(dir)") }
        try Shell.run("mkdir -p \(dir)/fs/grub \(dir)/fs/loader.1 && ln -s loader.1 \(dir)/fs/loader")
        try syslinux.write(toFile: "\(dir)/fs/loader.1/syslinux.cfg", atomically: true, encoding: .utf8)
        try BootMenu.entryFunctions.write(toFile: "\(dir)/fs/grub/functions.cfg", atomically: true, encoding: .utf8)
        // A 4 KiB block: room for both entries (GRUB's save_env takes any block size).
        let signature = "# GRUB Environment Block\n"
        try (signature + String(repeating: "#", count: 4096 - signature.count)).write(
            toFile: "\(dir)/fs/grub/probe", atomically: true, encoding: .utf8)
        try Shell.run(
            "truncate -s 8M \(dir)/disk.img && mkfs.ext4 -q -F -d \(dir)/fs \(dir)/disk.img && echo '(hd0) \(dir)/disk.img' > \(dir)/device.map")
        let commands = [
            "set root=hd0", "source (hd0)/grub/functions.cfg",
            #"function apt_layer_add_entry { set probe="${probe}[$1|$2|$3|$4]"; }"#,
            "source /loader/syslinux.cfg", "apt_layer_flush", "save_env --file (hd0)/grub/probe probe", "halt",
        ]
        try commands.joined(separator: "\n").appending("\n").write(toFile: "\(dir)/commands", atomically: true, encoding: .utf8)
        try Shell.run("timeout 30 grub-emu -m \(dir)/device.map -r hd0 -d /usr/lib/grub/x86_64-emu < \(dir)/commands > \(dir)/out 2>&1")
        let block = try Shell.run("debugfs -R 'cat /grub/probe' \(dir)/disk.img 2>/dev/null")
        let probe = block.split(separator: "\n").first { $0.hasPrefix("probe=") }.map { String($0.dropFirst(6)) }
        #expect(
            probe
                == "[Debian GNU/Linux 12 (bookworm) 2026.12.2 (ostree:0)|/ostree/debian-abc/vmlinuz-6.1.0-57-amd64|/ostree/debian-abc/initramfs-6.1.0-57-amd64.img"
                + "|ostree=/ostree/boot.1/debian/abc/0 root=UUID=a9a4 rw panic=10 console=ttyS0,115200n8]"
                + "[Debian GNU/Linux 12 (bookworm) 2026.12.1 (ostree:1)|/ostree/debian-def/vmlinuz-6.1.0-56-amd64||ostree=/ostree/boot.1/debian/def/0 root=UUID=a9a4 rw]",
            "\(block.prefix(800))")
    }
}
