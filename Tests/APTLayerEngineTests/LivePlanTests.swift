import APTLayerModel
import Foundation
import OSTree
import TestSupport
import Testing

@testable import APTLayerEngine

/// The pure parts of apply-live: the order of the /usr steps, the kernel refusal's paths, and the
/// phases drawn in docs/apply-live.md.
@Suite("apply-live plans", .tags(.fast))
struct LivePlanTests {
    static func change(_ kind: TreeChange.Kind, _ type: TreeChange.FileType, _ path: String, _ size: UInt64 = 0) -> TreeChange {
        TreeChange(kind: kind, type: type, size: size, path: path)
    }

    /// Removals deepest first, then copies parents first; an added directory is copied whole (what
    /// is under it is not a step of its own); the dpkg database goes last, its `status` at the end.
    @Test func stepsAreOrderedSoThatDpkgNeverListsAPackageWhoseFilesAreMissing() {
        let db = "/\(Layout.dpkgDatabase)"
        let (usr, database) = Engine.liveSteps([
            Self.change(.added, .regular, "\(db)/status", 10),
            Self.change(.added, .regular, "\(db)/info/fixture-app.list", 5),
            Self.change(.modified, .regular, "\(db)/status", 10),
            Self.change(.added, .directory, "/usr/share/fixture"),
            Self.change(.added, .regular, "/usr/share/fixture/data", 3),
            Self.change(.added, .regular, "/usr/bin/fixture-app", 7),
            Self.change(.removed, .other, "/usr/share/old"),
            Self.change(.removed, .other, "/usr/share/old-too/deeper"),
            Self.change(.typeChanged, .directory, "/usr/lib/thing"),
        ])
        #expect(usr.map(\.path) == ["/usr/share/old-too/deeper", "/usr/share/old", "/usr/bin/fixture-app", "/usr/lib/thing", "/usr/share/fixture"])
        #expect(usr.map(\.action) == [.remove, .remove, .copy, .replace, .copy])
        #expect(usr.last?.directory == true)
        #expect(database.map(\.path) == ["\(db)/info/fixture-app.list", "\(db)/status"])
    }

    @Test(arguments: [
        ("/usr/lib/modules/6.1.0-2-amd64/kernel/x.ko", true), ("/usr/lib/modules", true), ("/usr/lib/ostree-boot/vmlinuz", true),
        ("/usr/lib/linux/image", true), ("/usr/lib/modules-load.d/x.conf", false), ("/usr/share/doc/linux-image/x", false),
    ])
    func kernelPathsAreNeverAppliedLive(_ path: String, _ refused: Bool) {
        #expect(Engine.isBootPath(path) == refused, "\(path)")
    }

    /// The mermaid diagram in docs/apply-live.md names exactly the phases `LivePhase` has, and draws
    /// the forward path in their order.
    @Test func theDrawingIsThePhases() throws {
        let doc = try String(contentsOfFile: "\(Paths.packageRoot)/docs/apply-live.md", encoding: .utf8)
        let diagram = try #require(doc.components(separatedBy: "```mermaid").dropFirst().first?.components(separatedBy: "```").first)
        let edges = diagram.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.trimmingCharacters(in: .whitespaces).components(separatedBy: " --> ")
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        let drawn = Set(edges.flatMap { [$0.0, $0.1] }).subtracting(["[*]"])
        #expect(drawn == Set(LivePhase.allCases.map(\.rawValue)))
        let phases = LivePhase.allCases.map(\.rawValue)
        for (a, b) in zip(phases, phases.dropFirst()) {
            #expect(edges.contains { $0 == (a, b) }, "\(a) --> \(b) is not drawn")
        }
    }
}
