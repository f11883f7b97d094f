import APTLayerEngine
import APTLayerModel
import Foundation
import TestSupport
import Testing

/// `override replace`: a base package replaced by a local .deb or by a suite's version, listed in
/// status, reset, dropped when a new base carries it, and bad replacements refused before anything
/// is built.
@Suite("override replace", .asRoot, .offPool)
struct OverrideReplaceTests {
    /// Builds `name` `version` for `arch` into the bed's fixtures; returns its path.
    static func deb(_ bed: TestBed, _ name: String, _ version: String, arch: String = "all", depends: String? = nil) throws -> String {
        let src = "\(bed.fixtures)/src-\(name)-\(version)-\(arch)"
        let control =
            "Package: \(name)\nVersion: \(version)\nArchitecture: \(arch)\nMaintainer: t <t@localhost>\n"
            + (depends.map { "Depends: \($0)\n" } ?? "") + "Description: replacement\n"
        try Shell.run(
            "mkdir -p \(src)/DEBIAN \(src)/usr/share/\(name) && echo \(version) > \(src)/usr/share/\(name)/VERSION && printf %s \(Shell.quote(control)) > \(src)/DEBIAN/control && dpkg-deb --root-owner-group --build \(src) \(bed.fixtures)/\(name)_\(version)_\(arch).deb >/dev/null"
        )
        return "\(bed.fixtures)/\(name)_\(version)_\(arch).deb"
    }

    /// Deployment ids: what a refused change must leave as it was.
    static func ids(_ bed: TestBed) throws -> [String] { try bed.status.deployments.map(\.id) }

    @Test func aLocalDebReplacesABasePackageUntilReset() throws {
        let bed = try TestBed()
        let result = try bed.engine().overrideReplace([try Self.deb(bed, "fixture-base", "2.0")])
        #expect(result.changed)
        #expect(result.diff?.upgraded.contains { $0.name == "fixture-base" } == true)
        #expect(try bed.engine().packages(deployment: 0).first { $0.name == "fixture-base" }?.version == "2.0")
        #expect(try bed.status.deployments[0].replacedBasePackages == [PackageReplacement(name: "fixture-base", baseVersion: "1.0", version: "2.0")])
        #expect(try String(contentsOfFile: bed.deploymentDirectory() + "/usr/share/fixture-base/VERSION", encoding: .utf8) == "2.0\n")
        let origin = try String(contentsOfFile: bed.deploymentDirectory() + ".origin", encoding: .utf8)
        #expect(origin.contains("replace-local=") && origin.contains("fixture-base_2.0_all"))

        // Another replacement of the same package takes the first one's place.
        _ = try bed.engine().overrideReplace([try Self.deb(bed, "fixture-base", "3.0")])
        #expect(try bed.status.deployments[0].replacedBasePackages.map(\.version) == ["3.0"])

        _ = try bed.engine().overrideReset(["fixture-base"])
        #expect(try bed.defaultChecksum == bed.baseChecksum)
        #expect(try bed.status.deployments[0].replacedBasePackages.isEmpty)
        #expect(bed.leftovers.isEmpty)
    }

    @Test func badReplacementsAreRefusedBeforeAnythingIsBuilt() throws {
        let bed = try TestBed()
        let before = try Self.ids(bed)
        let cases: [(String, String)] = [
            ("\(bed.fixtures)/fx/bad/corrupt.deb", "corrupt package file"),
            (try Self.deb(bed, "fixture-base", "2.0", arch: "arm64"), "is for architecture arm64, this host's is amd64"),
            (try Self.deb(bed, "fixture-app", "2.0"), "package fixture-app is not a base package"),
            (try Self.deb(bed, "fixture-base", "1.0"), "the base carries fixture-base 1.0, not older than the replacement 1.0: nothing to replace"),
            (try Self.deb(bed, "fixture-base", "0.9"), "not older than the replacement 0.9"),
            (try Self.deb(bed, "fixture-base", "2.0", depends: "fixture-missing"), "fixture-missing"),
        ]
        for (path, words) in cases {
            #expect {
                try bed.engine().overrideReplace([path])
            } throws: { error in
                "\(error)".contains(words) && !"\(error)".contains("\n")
            }
            #expect(try Self.ids(bed) == before, "\(words): nothing changes")
            #expect(bed.leftovers.isEmpty)
        }
        #expect(throws: EngineError.self) { try bed.engine().overrideReplace(["fixture-base"]) }
        #expect(throws: EngineError.self) { try bed.engine().overrideReplace(["fixture-base"], fromRepo: "bad suite") }
        #expect(try Self.ids(bed) == before)
    }

    @Test func aSuitesVersionReplacesAndIsDroppedWhenTheBaseCarriesIt() throws {
        let bed = try TestBed()
        // A second repository whose Release names its suite, as a security archive's does.
        let security = "\(bed.fixtures)/security"
        try Shell.run(
            "mkdir -p \(security) && cp \(try Self.deb(bed, "fixture-base", "2.0")) \(security)/ && cd \(security) && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null && apt-ftparchive -o APT::FTPArchive::Release::Suite=fixture-security release . > Release"
        )
        try Shell.run("echo 'deb [trusted=yes] file:\(security) ./' > \(try bed.deploymentDirectory())/etc/apt/sources.list.d/security.list")

        _ = try bed.engine().overrideReplace(["fixture-base"], fromRepo: "fixture-security")
        #expect(try bed.status.deployments[0].replacedBasePackages == [PackageReplacement(name: "fixture-base", baseVersion: "1.0", version: "2.0")])
        #expect(try String(contentsOfFile: bed.deploymentDirectory() + ".origin", encoding: .utf8).contains("replace=fixture-base/fixture-security"))

        // A new base that carries fixture-base 2.0 itself: the replacement is dropped with a note.
        let rootfs = "\(bed.fixtures)/rootfs-caught-up"
        try Shell.run(
            "\(Paths.fixtures)/builders/make-rootfs.sh \(rootfs) \(bed.debs) \(bed.repo) caught-up && dpkg --root=\(rootfs) --admindir=\(rootfs)/var/lib/dpkg --force-not-root --log=/dev/null -i \(bed.fixtures)/fixture-base_2.0_all.deb >/dev/null"
        )
        let caughtUp = try bed.engine().composeRootfs(rootfs, repo: nil, options: .init(ref: "test/base", version: "2.0", stubKernel: true))
        let upgrade = try bed.engine().upgrade()
        #expect(upgrade.summary.contains("Dropped the replacement of fixture-base: the base carries fixture-base 2.0"), "\(upgrade.summary)")
        #expect(try bed.status.deployments[0].baseChecksum == caughtUp)
        #expect(try bed.status.deployments[0].replacedBasePackages.isEmpty)
        #expect(try !String(contentsOfFile: bed.deploymentDirectory() + ".origin", encoding: .utf8).contains("replace="))
        #expect(try bed.engine().packages(deployment: 0).first { $0.name == "fixture-base" }?.version == "2.0")
    }
}
