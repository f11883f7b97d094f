import Foundation

extension HostOperation {
    /// The flat argument object of every kind, as the API (`TransactionArguments`) and the journal
    /// spell it. Absent keys are nil; false flags are left out, so the canonical JSON is short and
    /// the same for equal operations.
    public struct Arguments: Codable, Sendable, Equatable, Hashable {
        public var packages: [String]?
        public var all: Bool?
        public var idempotent: Bool?
        public var dryRun: Bool?
        public var allowKernel: Bool?
        public var lockFinalization: Bool?
        public var refresh: Bool?
        public var check: Bool?
        public var target: String?
        public var ref: String?
        public var remoteUrl: String?
        public var pending: Bool?
        public var rollback: Bool?
        public var index: Int?
        public var append: [String]?
        public var delete: [String]?
        public var replace: [String]?
        public var fromRepo: String?
        public var applyLive: Bool?
        public var allowReplacement: Bool?
        public var startServices: Bool?
        public var reset: Bool?

        /// Creates arguments.
        public init(
            packages: [String]? = nil, all: Bool? = nil, idempotent: Bool? = nil, dryRun: Bool? = nil, allowKernel: Bool? = nil,
            lockFinalization: Bool? = nil, refresh: Bool? = nil, check: Bool? = nil, target: String? = nil, ref: String? = nil,
            remoteUrl: String? = nil, pending: Bool? = nil, rollback: Bool? = nil, index: Int? = nil, append: [String]? = nil,
            delete: [String]? = nil,
            replace: [String]? = nil, fromRepo: String? = nil, applyLive: Bool? = nil, allowReplacement: Bool? = nil,
            startServices: Bool? = nil, reset: Bool? = nil
        ) {
            self.applyLive = applyLive
            self.allowReplacement = allowReplacement
            self.startServices = startServices
            self.reset = reset
            self.packages = packages
            self.all = all
            self.idempotent = idempotent
            self.dryRun = dryRun
            self.allowKernel = allowKernel
            self.lockFinalization = lockFinalization
            self.refresh = refresh
            self.check = check
            self.target = target
            self.ref = ref
            self.remoteUrl = remoteUrl
            self.pending = pending
            self.rollback = rollback
            self.index = index
            self.append = append
            self.delete = delete
            self.replace = replace
            self.fromRepo = fromRepo
        }

        /// The keys that are present, by their API names.
        public var presentKeys: Set<String> {
            let pairs: [(String, Any?)] = [
                ("packages", packages), ("all", all), ("idempotent", idempotent), ("dryRun", dryRun), ("allowKernel", allowKernel),
                ("lockFinalization", lockFinalization), ("refresh", refresh), ("check", check), ("target", target), ("ref", ref),
                ("remoteUrl", remoteUrl), ("pending", pending), ("rollback", rollback), ("index", index), ("append", append), ("delete", delete),
                ("replace", replace), ("fromRepo", fromRepo), ("applyLive", applyLive), ("allowReplacement", allowReplacement),
                ("startServices", startServices), ("reset", reset),
            ]
            return Set(pairs.compactMap { $0.1 == nil ? nil : $0.0 })
        }

        /// Sorted-key JSON: the journal's `arguments` column.
        public var canonicalJSON: String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }

        var layeringFlags: LayeringFlags {
            .init(
                idempotent: idempotent ?? false, dryRun: dryRun ?? false, allowKernel: allowKernel ?? false,
                lockFinalization: lockFinalization ?? false, refresh: refresh ?? false,
                live: applyLive == true ? liveOptions : nil)
        }

        var liveOptions: LiveOptions { .init(allowReplacement: allowReplacement ?? false, startServices: startServices ?? false) }

        mutating func setLive(_ o: LiveOptions) {
            allowReplacement = o.allowReplacement ? true : nil
            startServices = o.startServices ? true : nil
        }

        mutating func setFlags(_ f: LayeringFlags) {
            idempotent = f.idempotent ? true : nil
            dryRun = f.dryRun ? true : nil
            allowKernel = f.allowKernel ? true : nil
            lockFinalization = f.lockFinalization ? true : nil
            refresh = f.refresh ? true : nil
            applyLive = f.live != nil ? true : nil
            if let live = f.live { setLive(live) }
        }
    }

    /// Which argument keys each kind takes.
    public static func allowedKeys(_ kind: Kind) -> Set<String> {
        let flags: Set<String> = ["idempotent", "dryRun", "allowKernel", "lockFinalization", "refresh"]
        switch kind {
        case .install: return flags.union(["packages", "applyLive", "allowReplacement", "startServices"])
        case .overrideRemove: return flags.union(["packages"])
        case .overrideReplace: return flags.union(["packages", "fromRepo"])
        case .uninstall, .overrideReset: return flags.union(["packages", "all"])
        case .upgrade: return flags.union(["check"])
        case .deploy: return flags.union(["target"])
        case .rebase: return flags.union(["ref", "target", "remoteUrl"])
        case .rollback, .finalize: return []
        case .cleanup: return ["pending", "rollback"]
        case .pin, .unpin: return ["index"]
        case .kargs: return ["append", "delete", "replace"]
        case .applyLive: return ["reset", "allowReplacement", "startServices"]
        }
    }

    /// Validates `arguments` for `kind`: unknown keys, missing packages, target, ref or index, and
    /// empty kernel-argument edits are refused with one line; with `checked` (requests from a
    /// client, not rows from the journal) so are values ``validate()`` refuses.
    public init(kind: Kind, arguments a: Arguments, checked: Bool = true) throws(OperationError) {
        try self.init(structure: kind, a)
        if checked { try validate() }
    }

    /// Refuses values that must never reach the engine: bad package names and paths, kernel
    /// arguments that would break the boot entry, internal refs, odd deploy targets, negative
    /// indexes, oversized lists.
    public func validate() throws(OperationError) {
        func checked(_ body: () throws -> Void) throws(OperationError) {
            do { try body() } catch let error as EngineError { throw OperationError(error.message) } catch { throw OperationError("\(error)") }
        }
        let a = arguments
        guard (a.packages ?? []).count <= 1000 else { throw OperationError("at most 1000 packages per transaction") }
        for list in [a.append, a.delete, a.replace].compactMap({ $0 }) where list.count > 100 {
            throw OperationError("at most 100 kernel argument edits of each kind")
        }
        switch self {
        case .install(let packages, let flags):
            for item in packages { try checked { try Operand.checkPackageItem(item) } }
            if flags.live != nil && flags.dryRun { throw OperationError("install: applyLive and dryRun do not go together") }
        case .overrideReplace(let packages, let suite, _):
            if let suite {
                try checked { try Operand.checkSuite(suite) }
                for name in packages { try checked { try Operand.checkPackageName(name) } }
            } else {
                for item in packages {
                    try checked { try Operand.checkPackageItem(item) }
                    guard (try? Operand.uploadDigest(in: item)) != nil || Operand.isHostPath(item) else {
                        throw OperationError("override replace takes .deb files or upload digests; name packages with fromRepo")
                    }
                }
            }
        case .uninstall(let packages, _, _), .overrideRemove(let packages, _), .overrideReset(let packages, _, _):
            for name in packages { try checked { try Operand.checkPackageName(name) } }
        case .deploy(let target, _):
            try Self.checkTarget(target, of: "deploy")
        case .rebase(let ref, let target, let remoteURL, _):
            try checked { try Operand.checkRefspec(ref) }
            if let target { try Self.checkTarget(target, of: "rebase") }
            if let remoteURL { try checked { try Operand.checkRemote(refspec: ref, url: remoteURL) } }
        case .pin(let index), .unpin(let index):
            guard index >= 0 else { throw OperationError("index must be zero or more") }
        case .kargs(let edits):
            try checked { try KernelArguments.validate(edits) }
        case .upgrade, .rollback, .cleanup, .finalize, .applyLive:
            break
        }
    }

    private static func checkTarget(_ target: String, of kind: String) throws(OperationError) {
        guard target.isPrintableASCII(allowingSpace: false), target.utf8.count <= 256 else {
            throw OperationError("\(kind) target \(target.debugDescription) must be printable ASCII without spaces, at most 256 bytes")
        }
    }

    private init(structure kind: Kind, _ a: Arguments) throws(OperationError) {
        if let key = a.presentKeys.subtracting(Self.allowedKeys(kind)).sorted().first {
            throw OperationError("argument \(key) does not apply to \(kind.rawValue)")
        }
        let flags = a.layeringFlags
        let packages = a.packages ?? []
        func needPackages() throws(OperationError) {
            if packages.isEmpty && a.all != true { throw OperationError("\(kind.rawValue) needs a non-empty packages list") }
        }
        func index() throws(OperationError) -> Int {
            guard let index = a.index else { throw OperationError("\(kind.rawValue) needs an index") }
            return index
        }
        switch kind {
        case .install:
            try needPackages()
            self = .install(packages: packages, flags: flags)
        case .uninstall:
            try needPackages()
            self = .uninstall(packages: packages, all: a.all ?? false, flags: flags)
        case .overrideRemove:
            try needPackages()
            self = .overrideRemove(packages: packages, flags: flags)
        case .overrideReplace:
            try needPackages()
            self = .overrideReplace(packages: packages, fromRepo: a.fromRepo, flags: flags)
        case .overrideReset:
            try needPackages()
            self = .overrideReset(packages: packages, all: a.all ?? false, flags: flags)
        case .upgrade:
            self = .upgrade(check: a.check ?? false, flags: flags)
        case .deploy:
            guard let target = a.target, !target.isEmpty else { throw OperationError("deploy needs a target (version or checksum)") }
            self = .deploy(target: target, flags: flags)
        case .rebase:
            guard let ref = a.ref, !ref.isEmpty else { throw OperationError("rebase needs a ref") }
            if let target = a.target, target.isEmpty { throw OperationError("rebase target must not be empty") }
            self = .rebase(ref: ref, target: a.target, remoteURL: a.remoteUrl, flags: flags)
        case .rollback: self = .rollback
        case .finalize: self = .finalize
        case .applyLive: self = .applyLive(reset: a.reset ?? false, options: a.liveOptions)
        case .cleanup: self = .cleanup(pending: a.pending ?? false, rollback: a.rollback ?? false)
        case .pin: self = .pin(index: try index())
        case .unpin: self = .unpin(index: try index())
        case .kargs:
            let edits = KernelArguments.Edits(append: a.append ?? [], delete: a.delete ?? [], replace: a.replace ?? [])
            if edits.append.isEmpty && edits.delete.isEmpty && edits.replace.isEmpty {
                throw OperationError("kargs needs append, delete or replace")
            }
            self = .kargs(edits)
        }
    }

    /// The flat arguments of this operation (the inverse of ``init(kind:arguments:)``).
    public var arguments: Arguments {
        var a = Arguments()
        if let flags { a.setFlags(flags) }
        switch self {
        case .install(let p, _), .overrideRemove(let p, _): a.packages = p
        case .overrideReplace(let p, let suite, _):
            a.packages = p
            a.fromRepo = suite
        case .uninstall(let p, let all, _), .overrideReset(let p, let all, _):
            a.packages = p
            a.all = all ? true : nil
        case .upgrade(let check, _): a.check = check ? true : nil
        case .deploy(let target, _): a.target = target
        case .rebase(let ref, let target, let remoteURL, _):
            a.ref = ref
            a.target = target
            a.remoteUrl = remoteURL
        case .rollback, .finalize: break
        case .applyLive(let reset, let options):
            a.reset = reset ? true : nil
            a.setLive(options)
        case .cleanup(let pending, let rollback):
            a.pending = pending ? true : nil
            a.rollback = rollback ? true : nil
        case .pin(let index), .unpin(let index): a.index = index
        case .kargs(let e):
            a.append = e.append.isEmpty ? nil : e.append
            a.delete = e.delete.isEmpty ? nil : e.delete
            a.replace = e.replace.isEmpty ? nil : e.replace
        }
        return a
    }

    /// Decodes a stored operation: `format` 1 and 2 rows share the kind + flat-arguments form.
    public init(stored kind: String, arguments json: String, format: Int) throws(OperationError) {
        guard (1...Self.format).contains(format) else {
            throw OperationError("operation stored in format \(format), newer than this apt-layer (\(Self.format))")
        }
        guard let kind = Kind(rawValue: kind) else { throw OperationError("unknown operation \(kind)") }
        let arguments: Arguments
        do { arguments = try JSONDecoder().decode(Arguments.self, from: Data(json.utf8)) } catch {
            throw OperationError("unreadable arguments of \(kind.rawValue): \(error)")
        }
        try self.init(kind: kind, arguments: arguments, checked: false)
    }
}

extension HostOperation: Codable {
    enum CodingKeys: String, CodingKey { case format, kind, arguments }

    /// `{"format": 2, "kind": "install", "arguments": {...}}`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(kind, forKey: .kind)
        try c.encode(arguments, forKey: .arguments)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let format = try c.decodeIfPresent(Int.self, forKey: .format) ?? 1
        guard (1...Self.format).contains(format) else {
            throw DecodingError.dataCorruptedError(forKey: .format, in: c, debugDescription: "format \(format) is newer than \(Self.format)")
        }
        let kind = try c.decode(Kind.self, forKey: .kind)
        let arguments = try c.decodeIfPresent(Arguments.self, forKey: .arguments) ?? .init()
        do { try self.init(kind: kind, arguments: arguments) } catch {
            throw DecodingError.dataCorruptedError(forKey: .arguments, in: c, debugDescription: error.message)
        }
    }
}
