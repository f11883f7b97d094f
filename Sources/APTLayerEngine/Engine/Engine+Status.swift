import APTLayerModel
import OSTree

extension Engine {
    /// The checksum of the stateroot's default deployment (the staged one on a booted host), read
    /// without building the whole status document.
    public func defaultChecksum() throws -> String? {
        let sysroot = try openSysroot()
        return deployments(sysroot, try osname(sysroot)).first?.checksum
    }

    /// The status document; no lock is taken (reads never wait for a mutation).
    public func status() throws -> StatusDocument {
        let sysroot = try openSysroot()
        let repo: Repo
        do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
        let booted = sysroot.booted
        // A deployment staged without explicit arguments boots with its merge deployment's.
        var merges: [String: Deployment] = [:]
        for d in sysroot.deployments where merges[d.osname] == nil { merges[d.osname] = sysroot.mergeDeployment(osname: d.osname) }
        var seenDefault: Set<String> = []
        var list: [StatusDocument.DeploymentStatus] = []
        for (index, d) in sysroot.deployments.enumerated() {
            let commit = try? repo.commit(d.checksum)
            let base = commit.map(baseChecksum(of:)) ?? d.checksum
            let baseCommit = base == d.checksum ? commit : try? repo.commit(base)
            let origin = d.origin.flatMap(Origin.init(keyFile:))
            let isDefault = !seenDefault.contains(d.osname)
            seenDefault.insert(d.osname)
            let pkglist = (commit?.strings(Layout.Key.packageList) ?? []).compactMap(Package.init(metadataForm:))
            let layered = Set(origin?.requested.packages ?? []).union(origin?.requested.localPackages.map(\.name) ?? [])
            list.append(
                .init(
                    index: index, id: "\(d.osname)-\(d.checksum).\(d.serial)", osname: d.osname, serial: Int(d.serial),
                    checksum: d.checksum, version: commit?.string(Layout.Key.version), timestamp: commit?.timestamp ?? 0,
                    origin: origin?.baseRefspec, booted: booted.map(d.isSame) ?? false, default: isDefault, staged: d.isStaged,
                    pinned: d.isPinned, baseChecksum: base, baseVersion: baseCommit?.string(Layout.Key.version),
                    baseTimestamp: baseCommit?.timestamp, requestedPackages: origin?.requested.packages ?? [],
                    requestedLocalPackages: origin?.requested.localPackages ?? [],
                    requestedBaseRemovals: origin?.requested.removals ?? [],
                    layeredPackages: pkglist.filter { layered.contains($0.name) },
                    kernelArguments: KernelArguments.userVisible(Self.effectiveKernelArguments(d, merge: merges[d.osname]))))
            if let replaced = origin?.requested.replacedNames, !replaced.isEmpty, base != d.checksum {
                // Only deployments with replacements read their base's package list.
                let basePackages = (try? packages(ofCommit: base, repo: repo)) ?? []
                list[list.count - 1].replacedBasePackages = replaced.compactMap { name in
                    guard let old = basePackages.first(where: { $0.name == name }), let new = pkglist.first(where: { $0.name == name }),
                        old.version != new.version
                    else { return nil }
                    return PackageReplacement(name: name, baseVersion: old.version, version: new.version)
                }
            }
        }
        if options.sysroot == "/", let booted, let index = list.firstIndex(where: { $0.booted }),
            let live = LiveFiles.state(booted: "\(booted.checksum).\(booted.serial)"), live.isLive(bootedChecksum: booted.checksum)
        {
            list[index].live = live
        }
        return StatusDocument(sysroot: options.sysroot, deployments: list, bootCounter: bootCounterStatus())
    }

    /// The packages installed in the deployment at `index` (default: the booted one, else the default).
    public func packages(deployment index: Int? = nil) throws -> [Package] {
        let sysroot = try openSysroot()
        let all = sysroot.deployments
        let chosen: Deployment
        if let index {
            guard all.indices.contains(index) else { throw EngineError(.notFound, "no deployment at index \(index) (there are \(all.count))") }
            chosen = all[index]
        } else {
            guard let first = sysroot.booted ?? all.first else { throw EngineError(.notFound, "no deployment") }
            chosen = first
        }
        let status = FileTree.read("\(sysroot.directory(of: chosen))/\(Layout.dpkgDatabase)/status") ?? ""
        return Package.installed(statusFile: status)
    }
}
