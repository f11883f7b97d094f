import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// Issue 26's smaller findings in the engine and the CLI, each as it was reproduced.
@Suite("smaller findings", .asRoot, .offPool)
struct SmallerFindingsTests {
    /// The boot versions (`boot/loader.N`) on a sysroot.
    static func bootVersions(_ bed: TestBed) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "\(bed.sysroot)/boot").filter { $0.hasPrefix("loader.") }.sorted()
    }

    /// A rollback reorders the deployments into a new boot version; the previous one is removed.
    @Test func rollbackLeavesOneBootVersion() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        #expect(try Self.bootVersions(bed).count == 1)
        _ = try bed.engine().rollback()
        let versions = try Self.bootVersions(bed)
        #expect(versions.count == 1, "\(versions)")
    }

    /// dpkg-deb's complaint about a corrupt .deb names the file the caller gave, never the
    /// store's private copy.
    @Test func aCorruptPackageIsNamedAsGiven() throws {
        let bed = try TestBed()
        let (code, output) = try Shell.status(
            "\(Paths.cli) install -q --sysroot \(bed.sysroot) \(bed.bad)/corrupt.deb 2>&1", environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.contains("\(bed.bad)/corrupt.deb"), "\(output)")
        #expect(!output.contains(".incoming"), "\(output)")
    }

    /// A journal that is not a database is moved aside and a new one started, as the agent does;
    /// the local run goes on.
    @Test func aGarbageJournalDoesNotStopLocalRuns() throws {
        let bed = try TestBed()
        let journal = "\(bed.sysroot)/ostree/apt-layer/journal.sqlite"
        try Shell.run("mkdir -p \(bed.sysroot)/ostree/apt-layer && head -c 8192 /dev/urandom > \(journal) && rm -f \(journal)-wal \(journal)-shm")
        let (code, output) = try Shell.status("\(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-app 2>&1", environment: TestBed.environment)
        #expect(code == 0, "\(output)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: "\(bed.sysroot)/ostree/apt-layer").contains {
                $0.hasPrefix("journal.sqlite.corrupt-")
            })
    }

    /// libostree's "Freed objects: 5.0 kB" carries a no-break space; in a C locale it came out as
    /// "5.0?kB".
    @Test func freedObjectsPrintInACLocale() throws {
        let bed = try TestBed()
        for package in ["fixture-app", "fixture-conf", "fixture-vardir"] { _ = try bed.engine().install([package]) }
        var environment = TestBed.environment
        environment["LC_ALL"] = "C"
        let (code, output) = try Shell.status("\(Paths.cli) cleanup -r --sysroot \(bed.sysroot) 2>&1", environment: environment)
        #expect(code == 0, "\(output)")
        #expect(output.contains("Freed objects: "), "\(output)")
        #expect(!output.contains("?kB") && !output.contains("?B"), "\(output)")
    }
}
