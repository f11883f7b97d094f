import Glibc

/// What changed in the package set between two trees.
public struct PackageDiff: Codable, Sendable, Equatable {
    /// A version change of one package.
    public struct Change: Codable, Sendable, Equatable {
        /// The package name.
        public var name: String
        /// The version before.
        public var from: String
        /// The version after.
        public var to: String

        /// Creates a change.
        public init(name: String, from: String, to: String) {
            self.name = name
            self.from = from
            self.to = to
        }
    }

    /// Packages only in the new set.
    public var added: [Package] = []
    /// Packages only in the old set.
    public var removed: [Package] = []
    /// Packages whose version went up.
    public var upgraded: [Change] = []
    /// Packages whose version went down.
    public var downgraded: [Change] = []

    /// Whether nothing changed.
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && upgraded.isEmpty && downgraded.isEmpty }

    /// Creates a diff from its parts.
    public init(added: [Package] = [], removed: [Package] = [], upgraded: [Change] = [], downgraded: [Change] = []) {
        self.added = added
        self.removed = removed
        self.upgraded = upgraded
        self.downgraded = downgraded
    }

    /// Compares two package sets by name and architecture, ordering versions the way dpkg does.
    public init(from old: [Package], to new: [Package]) {
        let key = { (p: Package) in "\(p.name):\(p.architecture)" }
        let oldByKey = Dictionary(old.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        let newByKey = Dictionary(new.map { (key($0), $0) }, uniquingKeysWith: { a, _ in a })
        for p in new.sorted() {
            guard let before = oldByKey[key(p)] else {
                added.append(p)
                continue
            }
            let order = DebianVersion.compare(before.version, p.version)
            if order < 0 { upgraded.append(Change(name: p.name, from: before.version, to: p.version)) }
            if order > 0 { downgraded.append(Change(name: p.name, from: before.version, to: p.version)) }
        }
        removed = old.sorted().filter { newByKey[key($0)] == nil }
    }
}

/// Debian version ordering (epoch, upstream version, revision), as `dpkg --compare-versions`.
public enum DebianVersion {
    /// Negative when `a` < `b`, zero when equal, positive when `a` > `b`.
    public static func compare(_ a: String, _ b: String) -> Int {
        let (ea, ua, ra) = split(a)
        let (eb, ub, rb) = split(b)
        if ea != eb { return ea < eb ? -1 : 1 }
        let u = compareFragment(ua, ub)
        return u != 0 ? u : compareFragment(ra, rb)
    }

    private static func split(_ v: String) -> (Int, String, String) {
        var rest = Substring(v)
        var epoch = 0
        if let colon = rest.firstIndex(of: ":") {
            epoch = Int(rest[..<colon]) ?? 0
            rest = rest[rest.index(after: colon)...]
        }
        if let dash = rest.lastIndex(of: "-") {
            return (epoch, String(rest[..<dash]), String(rest[rest.index(after: dash)...]))
        }
        return (epoch, String(rest), "")
    }

    private static func order(_ c: Character?) -> Int {
        guard let c else { return 0 }
        if c == "~" { return -1 }
        if c.isLetter { return Int(c.asciiValue ?? 0) }
        return Int(c.asciiValue ?? 0) + 256
    }

    private static func compareFragment(_ a: String, _ b: String) -> Int {
        var x = Array(a)[...]
        var y = Array(b)[...]
        while !x.isEmpty || !y.isEmpty {
            // Non-digit prefix, compared character by character.
            while (x.first.map { !$0.isNumber } ?? false) || (y.first.map { !$0.isNumber } ?? false) {
                let cx = x.first.flatMap { $0.isNumber ? nil : $0 }
                let cy = y.first.flatMap { $0.isNumber ? nil : $0 }
                let ox = order(cx)
                let oy = order(cy)
                if ox != oy { return ox < oy ? -1 : 1 }
                if cx != nil { x = x.dropFirst() }
                if cy != nil { y = y.dropFirst() }
            }
            // Digit run, compared numerically.
            let dx = x.prefix { $0.isNumber }
            let dy = y.prefix { $0.isNumber }
            x = x.dropFirst(dx.count)
            y = y.dropFirst(dy.count)
            let nx = dx.drop { $0 == "0" }
            let ny = dy.drop { $0 == "0" }
            if nx.count != ny.count { return nx.count < ny.count ? -1 : 1 }
            for (p, q) in zip(nx, ny) where p != q { return p < q ? -1 : 1 }
        }
        return 0
    }
}
