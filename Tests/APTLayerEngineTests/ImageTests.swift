import Foundation
import TestSupport
import Testing

/// OCI images (issue 23, parts 1, 2 and 5): `compose oci` pushes a base to a real docker-registry
/// with TLS on loopback (Tests/Fixtures/registry), a host rebases onto it, upgrades by tag
/// fetching only the layers that changed, and every bad image leaves the host unchanged with one
/// clear error. docs/images.md.
@Suite("OCI images through a registry", .asRoot, .offPool)
struct ImageTests {
    static let cli = Paths.cli

    /// `compose oci` of `ref` in the bed's repository to `destination`; returns the manifest digest.
    static func compose(_ bed: TestBed, _ destination: String, ref: String = "test/base", previous: String? = nil) throws -> String {
        let out = try Shell.run(
            "\(cli) compose oci -q --sysroot \(bed.sysroot) --ref \(ref) \(previous.map { "--previous \($0) " } ?? "")\(destination)")
        return try #require(out.split(separator: " ").first { $0.hasPrefix("sha256:") }.map(String.init), "\(out)")
    }

    /// A second sysroot with no deployment, as a new host would be.
    static func newHost(_ bed: TestBed, _ name: String) throws -> String {
        let host = "\(bed.fixtures)/\(name)"
        try Shell.run("\(cli) init -q --sysroot \(host) --os debian")
        return host
    }

    static func status(_ host: String) throws -> String { try Shell.run("\(cli) status --sysroot \(host)") }

    static func layers(ofManifest digest: String, in registry: TestRegistry) throws -> [String] {
        let json = try Shell.run("skopeo inspect --raw docker://\(registry.host)/base@\(digest)")
        let manifest = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return (manifest?["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
    }

    /// Push, rebase, layer on top, a new release pushed to the same tag with `--previous`, the
    /// check (manifest and configuration only), the upgrade (only the changed layers fetched),
    /// and the exact commit each time.
    @Test func aHostFollowsAnImageTagFetchingOnlyChangedLayers() throws {
        let bed = try TestBed()
        let registry = try TestRegistry(bed)
        defer { registry.stop() }
        let tag = "docker://\(registry.host)/base:stable"
        let d1 = try Self.compose(bed, tag)
        let again = try Self.compose(bed, "oci:\(bed.fixtures)/layout:n")
        #expect(again == d1, "the same commit makes the same image, byte for byte")
        // A publisher's archive-mode repository (objects compressed, no hardlink checkout) makes
        // the same image too, hardlinks between files sharing an object included.
        let archive = "\(bed.fixtures)/archive-repo"
        try Shell.run("ostree init --repo=\(archive) --mode=archive && ostree --repo=\(archive) pull-local \(bed.sysroot)/ostree/repo test/base")
        let fromArchive = try Shell.run("\(Self.cli) compose oci -q --repo \(archive) --ref test/base oci:\(bed.fixtures)/layout:a")
        #expect(fromArchive.hasPrefix("oci:\(bed.fixtures)/layout:a => \(d1) "), "\(fromArchive)")
        #expect(try Shell.run("ls -A \(archive)/tmp | grep -v '^cache$' || true").isEmpty, "no work directory left")
        let links = try Shell.run(
            "cd \(bed.fixtures)/layout/blobs/sha256 && for b in *; do tar tvzf $b 2>/dev/null; done | grep -c ' link to ' || true")
        #expect((Int(links.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0, "files sharing an object are hardlinks")

        let host = try Self.newHost(bed, "host")
        let reference = "ostree-unverified-registry:\(registry.host)/base:stable"
        try Shell.run("\(Self.cli) rebase -q --sysroot \(host) \(reference)")
        var status = try Self.status(host)
        #expect(status.contains("Commit: \(bed.baseChecksum)"), "the image's exact commit: \(status)")
        #expect(status.contains(reference), "\(status)")
        let origin = try Shell.run("cat \(host)/ostree/deploy/debian/deploy/*.origin")
        #expect(origin.contains("container-image-reference=\(reference)") && origin.contains("container-image-digest=\(d1)"), "\(origin)")
        try Shell.run("\(Self.cli) install -q --sysroot \(host) fixture-app")

        // Release N+1: one changed file in the base; pushed to the same tag, grouped as before.
        let n1 = try bed.composeBase(version: "2.0", note: "two")
        let d2 = try Self.compose(bed, tag, previous: tag)
        #expect(d2 != d1)
        let (l1, l2) = (try Self.layers(ofManifest: d1, in: registry), try Self.layers(ofManifest: d2, in: registry))
        #expect(l1.count == l2.count, "\(l1) \(l2)")
        let changed = Set(l2).subtracting(l1)
        #expect(changed.count <= 2 && changed.count < l2.count, "only the commit layer and the changed files' layer differ: \(changed)")

        try registry.clearLog()
        let check = try Shell.run("\(Self.cli) upgrade --check --sysroot \(host)")
        #expect(check.contains("Would deploy") && check.contains(d2) && check.contains(n1.prefix(12)), "\(check)")
        let layerDigests = Set(l1 + l2).map { String($0.dropFirst("sha256:".count)) }
        #expect(try registry.fetchedBlobs().filter(layerDigests.contains).isEmpty, "the check fetches no layer")

        try registry.clearLog()
        try Shell.run("\(Self.cli) upgrade -q --sysroot \(host)")
        status = try Self.status(host)
        #expect(status.contains("BaseCommit: \(n1)"), "\(status)")
        #expect(status.contains("LayeredPackages: fixture-app"), "\(status)")
        let fetched = Set(try registry.fetchedBlobs().filter(layerDigests.contains))
        #expect(fetched == Set(changed.map { String($0.dropFirst("sha256:".count)) }), "only the changed layers: \(fetched) vs \(changed)")
        #expect(try Shell.run("cat \(host)/ostree/deploy/debian/deploy/*.origin").contains("container-image-digest=\(d2)"))
        #expect(try Shell.run("\(Self.cli) upgrade --check --sysroot \(host)").contains("No change"))

        // The cache holds both images while the rollback deployment uses release N; removing it
        // drops N's image and the layers only it used.
        func cached() throws -> Set<String> {
            Set(try Shell.run("ls \(host)/ostree/apt-layer/images/blobs/sha256").split(separator: "\n").map { "sha256:\($0)" })
        }
        #expect(try cached().isSuperset(of: l1 + l2))
        try Shell.run("\(Self.cli) cleanup -q -r --sysroot \(host)")
        let kept = try cached()
        #expect(kept.isSuperset(of: l2) && kept.isDisjoint(with: Set(l1).subtracting(l2)), "\(kept)")
        #expect(kept.contains(d2) && !kept.contains(d1), "the manifests follow: \(kept)")

        // A pinned digest stays pinned: rebase to release N's image by digest while the tag is at
        // N+1; upgrade keeps it (and needs no registry: the cache has it).
        let pinnedHost = try Self.newHost(bed, "pinned")
        let pinned = "ostree-unverified-registry:\(registry.host)/base:stable@\(d1)"
        try Shell.run("\(Self.cli) rebase -q --sysroot \(pinnedHost) \(pinned)")
        #expect(try Self.status(pinnedHost).contains("Commit: \(bed.baseChecksum)"))
        #expect(try Shell.run("cat \(pinnedHost)/ostree/deploy/debian/deploy/*.origin").contains("container-image-reference=\(pinned)"))
        #expect(try Shell.run("\(Self.cli) upgrade --check --sysroot \(pinnedHost)").contains("No change: \(pinned) is still \(d1)"))
        // A cached layer damaged on disk: the pull notices, forgets the entry, fetches it again.
        let damaged = "\(pinnedHost)/ostree/apt-layer/images/blobs/sha256/\(l1[1].dropFirst(7))"
        try Shell.run("printf x >> \(damaged)")
        let healed = try Shell.run("\(Self.cli) upgrade --sysroot \(pinnedHost) 2>&1")
        #expect(healed.contains("is damaged") && healed.contains("No change"), "\(healed)")
        #expect(try Shell.run("sha256sum < \(damaged)").hasPrefix(String(l1[1].dropFirst(7))), "the layer fetched again")
        registry.stop()
        #expect(try Shell.run("\(Self.cli) upgrade --sysroot \(pinnedHost)").contains("No change"))
        #expect(try Self.status(pinnedHost).contains("Commit: \(bed.baseChecksum)"))
    }

    /// On a booted host (the booted-container harness, host tools in /usr): a rebase onto an
    /// image (an OCI layout, as from a USB stick) is staged and finalized at the reboot, the booted
    /// deployment is the image's exact commit; a new image under the same tag is staged by
    /// `upgrade` with the layered package re-applied, and booted after the next reboot.
    @Test func aBootedHostRebasesOntoAnImageAndUpgradesThroughReboots() throws {
        let bed = try TestBed()
        let layout = "\(bed.fixtures)/layout"
        _ = try Self.compose(bed, "oci:\(layout):stable")
        let boot = StagedDeploymentTests.boot(bed)
        let reference = "ostree-unverified-image:oci:\(layout):stable"
        let first = try Shell.status(
            boot
                + " /bin/sh -c '\(Self.cli) rebase -q --sysroot / \(reference) && \(Self.cli) install -q --sysroot / fixture-app && \(Self.cli) status --sysroot / && /run/harness/reboot'"
        )
        #expect(first.0 == 0, "\(first.1)")
        #expect(first.1.contains("→ [0] debian:\(reference) (default, staged)"), "\(first.1)")
        #expect(try Shell.run("\(StagedDeploymentTests.harness) last \(bed.fixtures)/boots").contains("reboot"))

        let n1 = try bed.composeBase(version: "2.0", note: "two")
        _ = try Self.compose(bed, "oci:\(layout):stable", ref: n1, previous: "oci:\(layout):stable")
        let second = try Shell.status(
            boot + " /bin/sh -c '\(Self.cli) status --sysroot /; fixture-app; \(Self.cli) upgrade -q --sysroot / && /run/harness/reboot'")
        #expect(second.0 == 0, "\(second.1)")
        #expect(second.1.contains("● [0] debian:\(reference)\n"), "the staged image deployment booted: \(second.1)")
        #expect(second.1.contains("BaseCommit: \(bed.baseChecksum)"), "booted the image's exact commit: \(second.1)")
        #expect(second.1.contains("fixture-app 1.0"), "\(second.1)")

        let third = try Shell.run(boot + " /bin/sh -c '\(Self.cli) status --sysroot /; cat /etc/base-note; fixture-app'")
        let booted = third.split(separator: "\n").prefix { !$0.hasPrefix("  [1]") && !$0.contains("[1] ") }.joined(separator: "\n")
        #expect(booted.contains("BaseCommit: \(n1)"), "the upgrade booted: \(third)")
        #expect(third.contains("two") && third.contains("fixture-app 1.0"), "\(third)")
    }

    /// A registry that dies in the middle of a layer, and a disk that fills during the pull: each
    /// fails with one line, the host and its image cache unchanged (every cached blob still its
    /// digest), and the next pull works.
    @Test func aTransferCutMidLayerAndAFullDiskChangeNothing() throws {
        let bed = try TestBed()
        let registry = try TestRegistry(bed)
        defer { registry.stop() }
        let tag = "docker://\(registry.host)/base:stable"
        let d1 = try Self.compose(bed, tag)
        // The host on its own small filesystem, so it can be filled.
        let host = "\(bed.fixtures)/host"
        try Shell.run("mkdir -p \(host) && mount -t tmpfs -o size=48M tmpfs \(host)")
        defer { _ = try? Shell.run("umount -l \(host)") }
        try Shell.run("\(Self.cli) init -q --sysroot \(host) --os debian")
        try Shell.run("\(Self.cli) rebase -q --sysroot \(host) ostree-unverified-registry:\(registry.host)/base:stable")
        let n1 = try bed.composeBase(version: "2.0", note: "two")
        let d2 = try Self.compose(bed, tag, previous: tag)
        let changed = Set(try Self.layers(ofManifest: d2, in: registry)).subtracting(try Self.layers(ofManifest: d1, in: registry))
        let before = try Self.status(host)
        let cache = "\(host)/ostree/apt-layer/images/blobs/sha256"

        func unchanged(_ what: String, _ out: (Int32, String), _ expected: String) throws {
            #expect(out.0 != 0, "\(what): \(out.1)")
            let errors = out.1.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1 && errors[0].contains(expected), "\(what): \(out.1)")
            #expect(try Self.status(host) == before, "\(what) changed the host")
            // Nothing half-written in the cache: every blob there is what its name says.
            let bad = try Shell.run(
                "cd \(cache) && for b in *; do [ \"$(sha256sum < $b | cut -c1-64)\" = \"$b\" ] || echo $b; done; ls -A ../.. | grep -vx -e oci-layout -e index.json -e blobs || true"
            )
            #expect(bad.isEmpty, "\(what) left in the cache: \(bad)")
            #expect(
                try Shell.run("ls \(host)/ostree/repo/tmp | grep -c apt-layer-image || true").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        }

        // A proxy in front of the registry that cuts the biggest changed layer in half.
        let cut = try #require(
            try changed.max { a, b in
                (try Shell.run("skopeo inspect --raw docker://\(registry.host)/base@\(d2)").components(separatedBy: a).count, a)
                    < (try Shell.run("skopeo inspect --raw docker://\(registry.host)/base@\(d2)").components(separatedBy: b).count, b)
            })
        let proxyPort = try TestRegistry.freePort()
        try Shell.run(
            "mkdir -p /etc/containers/certs.d/127.0.0.1:\(proxyPort) && cp \(registry.dir)/ca.crt /etc/containers/certs.d/127.0.0.1:\(proxyPort)/")
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        proxy.arguments = ["\(Paths.fixtures)/registry/cutting-proxy.py", proxyPort, registry.port, registry.dir, String(cut.dropFirst(7))]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        defer {
            kill(proxy.processIdentifier, SIGKILL)
            proxy.waitUntilExit()
            _ = try? Shell.run("rm -rf /etc/containers/certs.d/127.0.0.1:\(proxyPort)")
        }
        for _ in 0..<200 where try Shell.status("curl -sf --cacert \(registry.dir)/ca.crt https://127.0.0.1:\(proxyPort)/v2/ -o /dev/null").0 != 0 {
            usleep(50_000)
        }
        try unchanged(
            "cut mid-layer",
            try Shell.status("\(Self.cli) rebase -q --sysroot \(host) ostree-unverified-registry:127.0.0.1:\(proxyPort)/base:stable"),
            "copy docker://127.0.0.1:\(proxyPort)/base@\(d2)")

        // The disk full but for 256 KiB: room for the journal, not for the changed layers.
        let available = try #require(Int(try Shell.run("df --output=avail -B1 \(host) | tail -1").trimmingCharacters(in: .whitespacesAndNewlines)))
        try Shell.run("head -c \(available - 262_144) /dev/zero > \(host)/filler")
        try unchanged("full disk", try Shell.status("\(Self.cli) upgrade -q --sysroot \(host)"), "space")
        try Shell.run("rm \(host)/filler")
        try Shell.run("\(Self.cli) upgrade -q --sysroot \(host)")
        #expect(try Self.status(host).contains("Commit: \(n1)"))
    }

    /// `ostree-image-signed:` with skopeo enforcing a `signedBy` policy (GPG simple signing, the
    /// signatures in a lookaside store named by registries.d): an unsigned image is refused, a
    /// signed one is taken, and a policy that accepts anything makes the signed reference refuse
    /// rather than pretend. /etc/containers/policy.json is restored at the end.
    @Test func aSignedReferenceTakesOnlyImagesWithAValidSignature() throws {
        let bed = try TestBed()
        let registry = try TestRegistry(bed)
        defer { registry.stop() }
        let layout = "\(bed.fixtures)/layout"
        let n1 = try bed.composeBase(version: "2.0", note: "two")
        _ = try Self.compose(bed, "oci:\(layout):n", ref: bed.baseChecksum)
        _ = try Self.compose(bed, "oci:\(layout):n1", ref: n1)
        let gnupg = "\(bed.fixtures)/gnupg"
        let env = "GNUPGHOME=\(gnupg)"
        try Shell.run("mkdir -m 700 \(gnupg) && \(env) gpg --batch --passphrase '' --quick-gen-key 'image signer <signer@acme>' ed25519 sign never")
        let fingerprint = try Shell.run("\(env) gpg --list-keys --with-colons 2>/dev/null | awk -F: '/^fpr/{print $10; exit}'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Shell.run("\(env) gpg --export > \(bed.fixtures)/signer.gpg")
        let registriesD = "/etc/containers/registries.d/apt-layer-test-\(registry.port).yaml"
        try Shell.run(
            "mkdir -p /etc/containers/registries.d && printf 'docker:\\n  \(registry.host):\\n    sigstore: file://\(bed.fixtures)/sigstore\\n    sigstore-staging: file://\(bed.fixtures)/sigstore\\n' > \(registriesD)"
        )
        try Shell.run("cp /etc/containers/policy.json \(bed.fixtures)/policy.json.saved")
        defer { _ = try? Shell.run("cp \(bed.fixtures)/policy.json.saved /etc/containers/policy.json; rm -f \(registriesD)") }
        try Shell.run("\(env) skopeo copy -q --insecure-policy --sign-by \(fingerprint) oci:\(layout):n docker://\(registry.host)/base:signed")
        try Shell.run("skopeo copy -q --insecure-policy oci:\(layout):n1 docker://\(registry.host)/base:unsigned")
        try """
        {"default": [{"type": "reject"}], "transports": {"docker": {"\(registry.host)": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "\(bed.fixtures)/signer.gpg"}]}}}
        """.write(toFile: "/etc/containers/policy.json", atomically: true, encoding: .utf8)

        let host = try Self.newHost(bed, "host")
        let unsigned = try Shell.status("\(Self.cli) rebase -q --sysroot \(host) ostree-image-signed:docker://\(registry.host)/base:unsigned")
        #expect(unsigned.0 != 0 && unsigned.1.contains("error: ") && unsigned.1.contains("signature"), "\(unsigned.1)")
        #expect(try Self.status(host).contains("Deployments: none"), "nothing deployed")
        try Shell.run("\(Self.cli) rebase -q --sysroot \(host) ostree-image-signed:docker://\(registry.host)/base:signed")
        let status = try Self.status(host)
        #expect(
            status.contains("Commit: \(bed.baseChecksum)") && status.contains("ostree-image-signed:docker://\(registry.host)/base:signed"),
            "\(status)")

        // Debian's default policy (insecureAcceptAnything): the signed reference refuses.
        try Shell.run("cp \(bed.fixtures)/policy.json.saved /etc/containers/policy.json")
        let open = try Shell.status("\(Self.cli) upgrade -q --sysroot \(host)")
        #expect(open.0 != 0 && open.1.contains("without a signature (insecureAcceptAnything)"), "\(open.1)")
        #expect(try Self.status(host) == status)
    }

    /// Each bad image is refused with one line and changes nothing: no deployment, no commit, no
    /// work directory left.
    /// Entries with several extended attributes (systemd's journal directory carries two ACLs in
    /// every real base) are imported with them in OSTree's order: the exact commit comes back.
    @Test func entriesWithSeveralXattrsRebuildTheExactCommit() throws {
        let bed = try TestBed()
        let extra = "\(bed.fixtures)/xattrs"
        try Shell.run(
            """
            mkdir -p \(extra)/usr/share/xattrs/dir && echo x > \(extra)/usr/share/xattrs/dir/file
            python3 -c "import os, sys; [os.setxattr(sys.argv[1], n, bytes([2, 0, 0, 0, 1, 0, 7, 0, 255, 255, 255, 255, 4, 0, 5, 0, 255, 255, 255, 255, 8, 0, 5, 0, 4, 0, 0, 0, 16, 0, 5, 0, 255, 255, 255, 255, 32, 0, 5, 0, 255, 255, 255, 255])) for n in ('system.posix_acl_access', 'system.posix_acl_default')]; [os.setxattr(sys.argv[2], n, n.encode()) for n in ('trusted.zeta', 'trusted.alpha', 'trusted.mid')]" \
              \(extra)/usr/share/xattrs/dir \(extra)/usr/share/xattrs/dir/file
            ostree --repo=\(bed.sysroot)/ostree/repo commit -b test/xattrs --tree=ref=test/base --tree=dir=\(extra) --bootable \
              --owner-uid=0 --owner-gid=0 -s xattrs >/dev/null
            """)
        let commit = try Shell.run("ostree --repo=\(bed.sysroot)/ostree/repo rev-parse test/xattrs").trimmingCharacters(in: .whitespacesAndNewlines)
        let xattrs = try Shell.run("ostree --repo=\(bed.sysroot)/ostree/repo ls -X \(commit) /usr/share/xattrs/dir")
        #expect(xattrs.contains("system.posix_acl_default") && xattrs.contains("system.posix_acl_access"), "the base carries them: \(xattrs)")
        _ = try Self.compose(bed, "oci:\(bed.fixtures)/layout:xattrs", ref: "test/xattrs")
        let host = try Self.newHost(bed, "host")
        try Shell.run("\(Self.cli) rebase -q --sysroot \(host) ostree-unverified-image:oci:\(bed.fixtures)/layout:xattrs")
        let status = try Self.status(host)
        #expect(status.contains("Commit: \(commit)"), "the image's exact commit: \(status)")
    }

    @Test func badImagesLeaveTheHostUnchanged() throws {
        let bed = try TestBed()
        let registry = try TestRegistry(bed)
        defer { registry.stop() }
        let layout = "\(bed.fixtures)/layout"
        let n1 = try bed.composeBase(version: "2.0", note: "two")
        _ = try Self.compose(bed, "oci:\(layout):good", ref: bed.baseChecksum)
        _ = try Self.compose(bed, "oci:\(layout):next", ref: n1)
        _ = try Self.compose(bed, "docker://\(registry.host)/base:stable")
        let host = try Self.newHost(bed, "host")
        try Shell.run("\(Self.cli) rebase -q --sysroot \(host) ostree-unverified-registry:\(registry.host)/base:stable")
        let before = try Self.status(host)

        /// Copies tag `from` of the layout to tag `to`, editing its manifest and configuration with
        /// the Python statements `edit` (on `m` and `c`).
        func forge(_ from: String, _ to: String, _ edit: String) throws {
            let script = """
                import hashlib, json, os, sys
                d = sys.argv[1]
                blob = lambda h: os.path.join(d, 'blobs', 'sha256', h.split(':')[1])
                def put(data):
                    h = 'sha256:' + hashlib.sha256(data).hexdigest()
                    open(blob(h), 'wb').write(data)
                    return h, len(data)
                index = json.load(open(os.path.join(d, 'index.json')))
                name = lambda e: e.get('annotations', {}).get('org.opencontainers.image.ref.name')
                ref = lambda tag: [e for e in index['manifests'] if name(e) == tag][0]
                m = json.load(open(blob(ref('\(from)')['digest'])))
                c = json.load(open(blob(m['config']['digest'])))
                other = json.load(open(blob(ref('next' if '\(from)' == 'good' else 'good')['digest'])))
                \(edit)
                m['config']['digest'], m['config']['size'] = put(json.dumps(c).encode())
                h, n = put(json.dumps(m).encode())
                index['manifests'].append({'mediaType': m['mediaType'], 'digest': h, 'size': n, 'annotations': {'org.opencontainers.image.ref.name': '\(to)'}})
                json.dump(index, open(os.path.join(d, 'index.json'), 'w'))
                """
            try script.write(toFile: "\(bed.fixtures)/forge.py", atomically: true, encoding: .utf8)
            try Shell.run("python3 \(bed.fixtures)/forge.py \(layout)")
        }

        /// The cache's files and the manifests its index names.
        func cacheState() throws -> String {
            try Shell.run(
                "cd \(host)/ostree/apt-layer/images && ls -AR && python3 -c 'import json; print(sorted(m[\"digest\"] for m in json.load(open(\"index.json\"))[\"manifests\"]))'"
            )
        }
        let cacheBefore = try cacheState()
        func refused(_ reference: String, _ expected: String, verb: String = "rebase") throws {
            let (rc, out) = try Shell.status("\(Self.cli) \(verb) -q --sysroot \(host) \(reference)")
            #expect(try cacheState() == cacheBefore, "\(reference) changed the cache")
            #expect(rc != 0, "\(reference): \(out)")
            let errors = out.split(separator: "\n").filter { $0.hasPrefix("error:") }
            #expect(errors.count == 1 && errors[0].contains(expected), "\(reference): \(out)")
            #expect(try Self.status(host) == before, "\(reference) changed the host")
            #expect(
                try Shell.run("ls \(host)/ostree/repo/tmp | grep -c apt-layer-image || true").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
            #expect(!(try Shell.run("ostree refs --repo=\(host)/ostree/repo")).contains("image"))
        }

        // A layer whose bytes are not its digest, then a missing layer: one of release N (which
        // the host, on N+1, does not have) that N+1 does not share (a shared one would come from
        // the host's cache, intact).
        let tampered = try Shell.run(
            "python3 -c \"import json; d='\(layout)'; i=json.load(open(d+'/index.json')); l=lambda t: json.load(open(d+'/blobs/sha256/'+[x for x in i['manifests'] if x['annotations']['org.opencontainers.image.ref.name']==t][0]['digest'][7:]))['layers']; n=[x['digest'] for x in l('next')]; print([x['digest'][7:] for x in l('good')[1:] if x['digest'] not in n][0])\""
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        try Shell.run("cp \(layout)/blobs/sha256/\(tampered) \(bed.fixtures)/saved && printf x >> \(layout)/blobs/sha256/\(tampered)")
        try refused("ostree-unverified-image:oci:\(layout):good", "Digest did not match")
        try Shell.run("rm \(layout)/blobs/sha256/\(tampered)")
        try refused("ostree-unverified-image:oci:\(layout):good", "no such file")
        try Shell.run("cp \(bed.fixtures)/saved \(layout)/blobs/sha256/\(tampered)")
        // The commit the fleet policy requires (`rebase IMAGE COMMIT`, what the driver runs) is
        // not the one the image carries.
        try refused("ostree-unverified-registry:\(registry.host)/base:stable \(bed.baseChecksum)", "not the required")
        // A pinned digest the registry does not have under that name.
        try refused("ostree-unverified-registry:\(registry.host)/base:stable@sha256:\(String(repeating: "0", count: 64))", "manifest unknown")
        // A label naming another commit than the one the image carries.
        try forge("good", "label", "c['config']['Labels']['ostree.commit'] = '\(n1)'")
        try refused("ostree-unverified-image:oci:\(layout):label", "holds no commit object")
        // Content layers of release N+1 under the commit of release N: the tree check refuses it.
        try forge(
            "next", "mixed",
            "m['layers'][0] = other['layers'][0]; c['rootfs']['diff_ids'][0] = json.load(open(blob(other['config']['digest'])))['rootfs']['diff_ids'][0]; c['config']['Labels']['ostree.commit'] = '\(bed.baseChecksum)'"
        )
        try refused("ostree-unverified-image:oci:\(layout):mixed", "does not rebuild commit")
        // A plain container image: no ostree.commit label.
        try forge("good", "plain", "del c['config']['Labels']")
        try refused("ostree-unverified-image:oci:\(layout):plain", "not an OSTree base image")
        // The registry gone: upgrade fails and the deployment stays.
        registry.stop()
        try refused("", "connect", verb: "upgrade")
        #expect(before.contains(n1), "the host is on release N+1 from the registry: \(before)")
    }
}
