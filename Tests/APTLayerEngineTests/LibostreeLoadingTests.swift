import Foundation
import TestSupport
import Testing

/// The programs load libostree (with GIO, GObject, GLib, libarchive and their ~45 libraries) on the
/// first libostree call, not at exec (Sources/COSTreeLoader).
@Suite("libostree loaded on first use", .tags(.fast))
struct LibostreeLoadingTests {
    static let lazy = ["libostree-1.so.1", "libgio-2.0.so.0", "libgobject-2.0.so.0", "libglib-2.0.so.0", "libarchive.so.13"]

    /// Neither program names them as needed libraries: the dynamic loader does not map them at exec.
    @Test func theProgramsDoNotNeedLibostreeAtExec() throws {
        for program in [Paths.cli, Paths.agent] {
            let needed = try Shell.run("readelf -d \(program)").split(separator: "\n").filter { $0.contains("(NEEDED)") }
            #expect(needed.contains { $0.contains("libc.so.6") }, "\(program): \(needed)")
            for library in Self.lazy {
                #expect(!needed.contains { $0.contains("[\(library)]") }, "\(program) needs \(library) at exec")
            }
        }
    }

    /// `--version` never loads them; a command that reads a repository loads them, and its result
    /// is libostree's own (so every trampoline it crossed passed its arguments through).
    @Test func onlyACommandThatUsesLibostreeLoadsIt() throws {
        let directory = try bareRepository()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let (versionStatus, version) = try Shell.status("LD_DEBUG=files \(Paths.cli) --version 2>&1")
        #expect(versionStatus == 0)
        for library in Self.lazy { #expect(!version.contains("file=\(library)"), "--version loaded \(library)") }

        let (status, output) = try Shell.status("LD_DEBUG=files \(Paths.cli) status --sysroot \(directory) 2>&1")
        #expect(status == 1)
        #expect(output.contains("file=libostree-1.so.1 [0];  dynamically loaded by"), "\(output.suffix(2000))")
        #expect(output.contains("opening repo: opendir(objects): No such file or directory"), "\(output.suffix(2000))")
    }
}

/// Without a loadable libostree, a command that needs it stops at its first libostree call with
/// one line and exit status 127 (nothing has touched the sysroot yet); one that does not still runs.
@Suite("libostree missing at run time")
struct LibostreeMissingTests {
    @Test func aCommandThatNeedsItSaysSoInOneLine() throws {
        let directory = try bareRepository()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The library's file replaced by an empty one in a private mount namespace.
        let library = try Shell.run("readlink -f /usr/lib/x86_64-linux-gnu/libostree-1.so.1").trimmingCharacters(in: .whitespacesAndNewlines)
        let hidden = "bwrap --dev-bind / / --ro-bind /dev/null \(library)"

        let (status, output) = try Shell.status("\(hidden) \(Paths.cli) status --sysroot \(directory) 2>&1")
        #expect(status == 127)
        #expect(output.hasPrefix("apt-layer: cannot load libostree (libostree-1.so.1: "), "\(output)")
        #expect(output.hasSuffix("install the ostree package\n"), "\(output)")
        #expect(output.split(separator: "\n").count == 1, "\(output)")
        #expect(try Shell.run("ls -A \(directory)/ostree/repo").isEmpty)

        let (versionStatus, version) = try Shell.status("\(hidden) \(Paths.cli) --version 2>&1")
        #expect(versionStatus == 0, "\(version)")
    }
}

/// A temporary directory holding an empty `ostree/repo` (libostree refuses it: no `objects`).
func bareRepository() throws -> String {
    let directory = try Shell.run("mktemp -d /tmp/apt-layer-lazy.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
    try FileManager.default.createDirectory(atPath: "\(directory)/ostree/repo", withIntermediateDirectories: true)
    return directory
}
