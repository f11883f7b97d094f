import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// Layered kernel modules on a host whose firmware enforces Secure Boot (Layering/
/// SecureBootModules.swift). The host's Secure Boot state is read from efivarfs; these tests give
/// the engine a directory holding a copy of the `SecureBoot` variable instead
/// (`APT_LAYER_TEST_EFIVARS`), enforced or not.
@Suite("Secure Boot and layered kernel modules", .asRoot, .offPool)
struct SecureBootModulesTests {
    /// A directory standing in for efivarfs with the `SecureBoot` variable (attributes, then 1 or 0).
    static func efivars(_ bed: TestBed, enforced: Bool) throws -> [String: String] {
        let dir = "\(bed.fixtures)/efivars-\(enforced)"
        try Shell.run("mkdir -p \(dir) && printf '\\006\\000\\000\\000\\00\(enforced ? 1 : 0)' > \(dir)/\(SecureBootModules.variable)")
        #expect(SecureBootModules.isEnforced(efivars: dir) == enforced)
        return TestBed.environment.merging(["APT_LAYER_TEST_EFIVARS": dir]) { $1 }
    }

    @Test func unsignedAndDKMSModulesAreRefusedAndChangeNothing() throws {
        let bed = try TestBed()
        let environment = try Self.efivars(bed, enforced: true)
        let before = try bed.status
        let cases = [
            ("fixture-module", "brings the unsigned kernel module /usr/lib/modules/0.0.0-apt-layer-stub/extra/fixture.ko"),
            ("fixture-dkms", "builds kernel modules with DKMS"),
        ]
        for (package, words) in cases {
            let (code, output) = try Shell.status("\(Paths.cli) install -q --sysroot \(bed.sysroot) \(package) 2>&1", environment: environment)
            #expect(code == 1)
            #expect(output.split(separator: "\n").count == 1 && output.hasPrefix("error: refused: \(package) \(words)"), "\(output)")
            #expect(try bed.status == before)
            #expect(bed.leftovers.isEmpty)
        }
        // Signed modules, plain and compressed, are layered.
        try Shell.run("\(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-module-signed fixture-module-xz", environment: environment)
        #expect(try bed.packageNames().contains("fixture-module-xz"))
        #expect(
            FileManager.default.fileExists(atPath: try bed.deploymentDirectory() + "/usr/lib/modules/0.0.0-apt-layer-stub/extra/fixture-xz.ko.xz"))
    }

    @Test func withoutSecureBootModulesAreLayered() throws {
        let bed = try TestBed()
        let environment = try Self.efivars(bed, enforced: false)
        try Shell.run("\(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-module fixture-dkms", environment: environment)
        #expect(try bed.packageNames().contains("fixture-module") && bed.packageNames().contains("fixture-dkms"))
    }
}

@Suite("Secure Boot module checks", .tags(.fast))
struct SecureBootModuleParsingTests {
    @Test func dkmsIsFoundInDependsAndPreDepends() {
        let status = """
            Package: a
            Status: install ok installed
            Version: 1
            Depends: libc6 (>= 2.36), dkms (>= 3.0) | something

            Package: b
            Status: install ok installed
            Version: 1
            Pre-Depends: dkms:any

            Package: c
            Status: install ok installed
            Version: 1
            Depends: dkms-helper, notdkms

            Package: d
            Status: install ok installed
            Version: 1
            """
        let fields = Dictionary(uniqueKeysWithValues: Package.installedStanzas(statusFile: status).map { ($0.package.name, $0.fields) })
        func dependsOnDKMS(_ name: String) -> Bool {
            SecureBootModules.dependsOnDKMS([fields[name]?["Depends"], fields[name]?["Pre-Depends"]].compactMap { $0 })
        }
        #expect(dependsOnDKMS("a"))
        #expect(dependsOnDKMS("b"))
        #expect(!dependsOnDKMS("c"))
        #expect(!dependsOnDKMS("d"))
    }
}
