import APTLayerModel
import TestSupport
import Testing

@testable import APTLayerEngine

@Suite("Pure logic", .tags(.fast))
struct UnitTests {
    @Test(arguments: [
        ("1.0", "1.0", 0), ("1.0", "1.1", -1), ("1.0~rc1", "1.0", -1), ("2:1.0", "1:9.9", 1),
        ("1.0-1", "1.0-2", -1), ("7.88.1-10+deb12u12", "7.88.1-10+deb12u5", 1), ("1.0a", "1.0", 1), ("1.10", "1.9", 1),
    ])
    func debianVersionOrder(_ a: String, _ b: String, _ expected: Int) {
        #expect(DebianVersion.compare(a, b).signum() == expected)
    }

    @Test func packageDiffClassifiesChanges() {
        let old = [
            Package(name: "a", version: "1", architecture: "all"), Package(name: "b", version: "2", architecture: "all"),
            Package(name: "c", version: "3", architecture: "all"),
        ]
        let new = [
            Package(name: "a", version: "2", architecture: "all"), Package(name: "b", version: "1", architecture: "all"),
            Package(name: "d", version: "1", architecture: "all"),
        ]
        let diff = PackageDiff(from: old, to: new)
        #expect(diff.added.map(\.name) == ["d"])
        #expect(diff.removed.map(\.name) == ["c"])
        #expect(diff.upgraded.map(\.name) == ["a"])
        #expect(diff.downgraded.map(\.name) == ["b"])
    }

    @Test func aptSimulationParses() {
        let plan = AptPlan(
            simulationOutput: """
                NOTE: This is only a simulation!
                Inst libcurl4 (7.88.1-10+deb12u12 Debian:12.11/stable [amd64])
                Inst fixture-app [1.0] (2.0 localhost [all])
                Remv fixture-removable [1.0]
                Conf libcurl4 (7.88.1-10+deb12u12 Debian:12.11/stable [amd64])
                """)
        #expect(
            plan.installs == [
                Package(name: "fixture-app", version: "2.0", architecture: "all"),
                Package(name: "libcurl4", version: "7.88.1-10+deb12u12", architecture: "amd64"),
            ])
        #expect(plan.replacedVersions == ["fixture-app": "1.0"])
        #expect(plan.removals == ["fixture-removable"])
    }

    /// A simulation with broken-for-now markers and multiarch names lists the same plan as dpkg's
    /// package sets before and after that install (the inputs hash of a build compares the two).
    @Test func simulationAndPackageSetsAgree() {
        let simulated = AptPlan(
            simulationOutput: """
                Inst libssl3 [3.0.1-1] (3.0.2-1 Debian:12/stable [amd64]) []
                Inst libc6:i386 (2.36-9 Debian:12/stable [i386]) [libc6:amd64 ]
                Inst tzdata [2024a-0] (2025b-0 Debian:12/stable [all])
                Remv fixture-removable:amd64 [1.0]
                """)
        let before = [
            Package(name: "libssl3", version: "3.0.1-1", architecture: "amd64"),
            Package(name: "libc6", version: "2.36-9", architecture: "amd64"),
            Package(name: "tzdata", version: "2024a-0", architecture: "all"),
            Package(name: "fixture-removable", version: "1.0", architecture: "amd64"),
        ]
        let after = [
            Package(name: "libssl3", version: "3.0.2-1", architecture: "amd64"),
            Package(name: "libc6", version: "2.36-9", architecture: "amd64"),
            Package(name: "libc6", version: "2.36-9", architecture: "i386"),
            Package(name: "tzdata", version: "2025b-0", architecture: "all"),
        ]
        let read = AptPlan(before: before, after: after)
        #expect(simulated.installs.map(\.metadataForm) == ["libc6 2.36-9 i386", "libssl3 3.0.2-1 amd64", "tzdata 2025b-0 all"])
        #expect(simulated.removals == ["fixture-removable"])
        #expect(simulated.canonicalLines == read.canonicalLines)
        #expect(simulated.replacedVersions["libssl3"] == "3.0.1-1" && read.replacedVersions["libssl3"] == "3.0.1-1")
    }

    @Test func kernelArgumentEdits() throws {
        var k = KernelArguments("root=UUID=1 quiet console=tty0 console=ttyS0")
        try k.apply(.init(append: ["x=1"], delete: ["quiet"], replace: ["console=ttyS0=ttyS1"]))
        #expect(k.description == "root=UUID=1 console=tty0 console=ttyS1 x=1")
        #expect(throws: EngineError.self) { try k.apply(.init(replace: ["console=ttyS9"])) }
        #expect(throws: EngineError.self) { try k.apply(.init(delete: ["nope"])) }
    }

    @Test func treefileDefaultsAndMirrorFromHost() throws {
        let tree = try Treefile.parse("ref: debian/test\npackages: [curl]\nstub-kernel: true\n")
        #expect(tree.suite == "bookworm" && tree.variant == "minbase" && tree.stubKernel)
        let args = tree.mmdebstrapArguments(target: "/t")
        #expect(args.suffix(2) == ["bookworm", "/t"])
        #expect(args.contains("--include=curl"))
        #expect(throws: EngineError.self) { try Treefile.parse("packages: [x]\n") }
    }

    @Test func accountsAddedByScripts() {
        let added = SystemUsers.added(before: "root:x:0:0::/root:/bin/sh\n", after: "root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/:/bin/false\n")
        #expect(added == ["svc:x:999:999::/:/bin/false"])
        #expect(SystemUsers.appending(added, to: "root:x:0:0::/root:/bin/sh") == "root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/:/bin/false\n")
        #expect(SystemUsers.appending(added, to: "svc:x:5:5::/:/bin/false\n") == "svc:x:5:5::/:/bin/false\n")
    }

    @Test func dpkgStatusParsing() {
        let packages = Package.installed(
            statusFile: """
                Package: b
                Status: install ok installed
                Version: 2
                Architecture: amd64
                Description: x
                 continued: line

                Package: gone
                Status: deinstall ok config-files
                Version: 1

                Package: a
                Status: install ok installed
                Version: 1:1.0
                Architecture: all
                """)
        #expect(packages.map(\.nameVersionArch) == ["a_1:1.0_all", "b_2_amd64"])
    }
}

/// Finding 15 of issue 7: a child killed by a signal is reported as such, not as its last line.
@Suite("signal deaths", .tags(.fast))
struct SignalDeathTests {
    @Test func aKilledChildIsNamedWithItsSignal() throws {
        let error = try #require(throws: EngineError.self) { try Subprocess.check(["sh", "-c", "echo Reading package lists...; kill -9 $$"]) }
        #expect(error.message.hasPrefix("sh killed by signal 9"), "\(error.message)")
        let result = try Subprocess.run(["sh", "-c", "echo Reading package lists...; kill -TERM $$"])
        #expect(AptFailure.error(result, program: "apt-get").message.hasPrefix("apt-get killed by signal 15"))
        let exited = try Subprocess.run(["sh", "-c", "echo 'E: boom'; exit 100"])
        #expect(AptFailure.error(exited, program: "apt-get").message == "boom")
    }
}
