import Foundation

/// How `compose oci` splits a base into layers: by dpkg package ownership, so an update to one
/// package changes the layer holding that package, the small dpkg `status` layer and the commit
/// object's layer, and nothing else.
///
/// The big packages get a layer each; when there are more packages than layers, the rest share
/// a fixed number of buckets chosen by a hash of the package name (stable from one release to
/// the next, whatever the sizes). Given the previous image's grouping, packages keep the groups
/// they had. A package's files in the dpkg database (`info/NAME.*`) go with it; the database's
/// `status` files have a layer of their own; files no package owns (/usr/etc's generated files)
/// and every directory go to one `unpackaged` layer.
struct ImageLayers: Equatable {
    /// Package groups, one layer each, in layer order (sorted by their first package).
    var groups: [[String]]

    /// Buckets for the packages without a layer of their own.
    static let buckets = 8
    /// The fewest layers a plan may have: the commit, the unpackaged files, the dpkg status,
    /// buckets and one more.
    static let minimumLayers = buckets + 4

    /// Layers every image has besides the package groups: the commit object, the unpackaged
    /// files, the dpkg status.
    static let fixedLayers = 3

    /// Whether a path is one of the dpkg database's status files (`status`, `status-old`,
    /// `available`, `diversions`…: what changes with every package change), given the tree.
    static func isDpkgState(_ path: String) -> Bool {
        for base in ["usr/share/dpkg/database/", "var/lib/dpkg/"] where path.hasPrefix(base) {
            let rest = path.dropFirst(base.count)
            return !rest.contains("/") && !rest.isEmpty
        }
        return false
    }

    /// Plans the groups for packages of `sizes` (bytes each) in at most `maxLayers` layers in all
    /// (``fixedLayers`` of them are not package groups), keeping `previous` groups.
    static func plan(sizes: [String: Int], previous: [[String]] = [], maxLayers: Int) -> ImageLayers {
        let budget = max(maxLayers, minimumLayers) - fixedLayers
        var groups: [[String]] = []
        var placed = Set<String>()
        for group in previous {
            let kept = group.filter { sizes[$0] != nil && !placed.contains($0) }
            guard !kept.isEmpty, groups.count < budget else { continue }
            groups.append(kept.sorted())
            placed.formUnion(kept)
        }
        // Largest first; names break ties so the plan does not depend on dictionary order.
        let remaining = sizes.keys.filter { !placed.contains($0) }.sorted { (sizes[$0]!, $1) > (sizes[$1]!, $0) }
        let free = budget - groups.count
        if remaining.count <= free {
            groups += remaining.map { [$0] }
        } else {
            let own = max(free - buckets, 0)
            groups += remaining.prefix(own).map { [$0] }
            var shared = [[String]](repeating: [], count: min(buckets, max(free - own, 1)))
            for name in remaining.dropFirst(own) { shared[Int(fnv1a(name) % UInt64(shared.count))].append(name) }
            if free - own <= 0, !groups.isEmpty {
                // No room at all: the last group takes the rest.
                groups[groups.count - 1] += shared.flatMap { $0 }
            } else {
                groups += shared.filter { !$0.isEmpty }.map { $0.sorted() }
            }
        }
        return ImageLayers(groups: groups.map { $0.sorted() }.sorted { $0[0] < $1[0] })
    }

    /// FNV-1a of the name's bytes: the same bucket in every release and on every machine.
    static func fnv1a(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// The packages that own each path of a checked-out base, from the dpkg database's `*.list`
    /// files (a path listed by several packages belongs to the first by name). Paths are relative
    /// to the tree and as the base holds them: `/etc` is `usr/etc`, merged-/usr names lead to `usr/`.
    static func owners(tree: String) -> [String: String] {
        let info = ["usr/share/dpkg/database/info", "var/lib/dpkg/info"].map { "\(tree)/\($0)" }.first(where: FileTree.isDirectory)
        guard let info, let names = try? FileManager.default.contentsOfDirectory(atPath: info) else { return [:] }
        var owners: [String: String] = [:]
        // A package's own database files (info/NAME[:ARCH].list, .md5sums, maintainer scripts)
        // travel with it: an update to one package then leaves the other layers alone.
        let relativeInfo = String(info.dropFirst(tree.count + 1))
        for file in names.sorted() {
            // The suffix after the last dot (names may hold dots: libglib2.0-0:amd64.list).
            guard let dot = file.lastIndex(of: "."), let package = file[..<dot].split(separator: ":").first, !package.isEmpty else { continue }
            owners["\(relativeInfo)/\(file)"] = String(package)
        }
        for file in names.filter({ $0.hasSuffix(".list") }).sorted() {
            let package = String(file.dropLast(".list".count).split(separator: ":").first ?? "")
            guard !package.isEmpty, let text = FileTree.read("\(info)/\(file)") else { continue }
            for line in text.split(separator: "\n") {
                let path = normalize(String(line))
                guard !path.isEmpty, owners[path] == nil else { continue }
                owners[path] = package
            }
        }
        return owners
    }

    /// A dpkg path as an OSTree base holds it.
    static func normalize(_ path: String) -> String {
        var parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        guard let first = parts.first else { return "" }
        if ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"].contains(first) { parts.insert("usr", at: 0) }
        return parts.joined(separator: "/")
    }
}
