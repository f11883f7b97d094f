import APTLayerModel
import Foundation
import Glibc
import OSTree

/// The transient overlay on `/usr` a live apply writes into, as `ostree admin unlock --transient`
/// makes it (a directory `/var/tmp/ostree-unlock-ovl.XXXXXX` with `upper` and `work`, and
/// libostree's `unlocked-transient` run-state flag), except that its lower layer is the `/usr`
/// mounted now rather than the deployment's directory: the same tree on a host, and the one the
/// booted-container harness shows.
///
/// Everyone sees the overlay read-only; only the writer's private mount namespace makes it writable
/// (``makeWritableHere()``). It lives in the host's mount namespace, so it outlives the helper and
/// the agent; the next boot does not mount it, and libostree's tmpfiles.d (`R!
/// /var/tmp/ostree-unlock-ovl.*`) or the engine's sweep removes the directory.
enum LiveOverlay {
    /// The `/usr` mount: its file system type and super options (`lowerdir=…,upperdir=…`).
    static func usrMount() -> (type: String, options: String)? {
        // Read to the end: a single read (Foundation's, for a file whose size is 0) stops at a page.
        guard let text = ProcessStat.read("/proc/self/mountinfo") else { return nil }
        var found: (String, String)?
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, left[4] == "/usr", right.count >= 3 else { continue }
            found = (String(right[0]), String(right[2]))  // the last one listed is on top
        }
        return found
    }

    /// The overlay directory whose upper layer `/usr` shows now, when it is one of ours.
    static func mountedDirectory() -> String? {
        guard let mount = usrMount(), mount.type == "overlay" else { return nil }
        for option in mount.options.split(separator: ",") where option.hasPrefix("upperdir=") {
            let upper = String(option.dropFirst("upperdir=".count))
            guard upper.hasPrefix(LiveFiles.overlayPrefix), upper.hasSuffix("/upper") else { return nil }
            return String(upper.dropLast("/upper".count))
        }
        return nil
    }

    /// Makes sure `/usr` is a transient overlay and returns its directory (nil for one that
    /// `ostree admin unlock --transient` made). Mounts one when there is none.
    static func ensure(plan: LivePlan, recorded: String?) throws -> String? {
        if plan.externalOverlay { return nil }
        if let mounted = mountedDirectory() {
            try writeFlag(plan, mounted)
            return mounted
        }
        if let recorded, plan.target != plan.bootedCommit {
            // /usr lost the overlay (someone unmounted it): it shows the booted commit, not the plan's
            // source, so applying the plan's differences would mix the two. --reset goes back cleanly.
            throw EngineError(.refused, "the live overlay \(recorded) is no longer mounted on /usr; run apply-live --reset first")
        }
        try FileTree.makeDirectory("/var/tmp", mode: 0o1777)
        var template = Array("\(LiveFiles.overlayPrefix)XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw FileTree.posixError("create an overlay directory in /var/tmp") }
        let directory = String(cString: made)
        for part in ["upper", "work"] where mkdir("\(directory)/\(part)", 0o755) != 0 {
            throw FileTree.posixError("create \(directory)/\(part)")
        }
        let options = "lowerdir=/usr,upperdir=\(directory)/upper,workdir=\(directory)/work"
        // Read-only from the start, as libostree's transient unlock mounts it: every copy of the
        // mount (other namespaces receive one at once) is read-only; only the writer's own
        // namespace makes its copy writable (makeWritableHere).
        guard mount("overlay", "/usr", "overlay", UInt(MS_RDONLY), options) == 0 else {
            let error = FileTree.posixError("mount the transient overlay on /usr")
            FileTree.remove(directory)
            throw error
        }
        try writeFlag(plan, directory)
        LiveHelper.say("Mounted a transient overlay on /usr (\(directory))")
        return directory
    }

    /// libostree's flag, so `ostree admin status` says "Unlocked: transient" and a second unlock is refused.
    static func writeFlag(_ plan: LivePlan, _ directory: String) throws {
        let flag = LiveFiles.unlockFlag(booted: plan.booted)
        guard !FileTree.exists(flag) else { return }
        try FileTree.makeDirectory((flag as NSString).deletingLastPathComponent)
        try FileTree.write(flag, directory)
    }

    /// In the writer's own mount namespace: `/usr` writable. A plain remount makes the overlay's
    /// superblock writable and clears the read-only flag of this namespace's copy of the mount
    /// only; every other copy keeps its own read-only flag (rpm-ostree's apply-live does the same,
    /// and it also opens an overlay `ostree admin unlock --transient` mounted).
    static func makeWritableHere() throws {
        guard mount(nil, "/usr", nil, UInt(MS_REMOUNT), nil) == 0 else {
            throw FileTree.posixError("make /usr writable in the apply-live writer's namespace")
        }
        guard access("/usr", W_OK) == 0 else { throw FileTree.posixError("write to /usr") }
    }

    /// Removes overlay directories of earlier boots. Only when libostree says the booted
    /// deployment is not unlocked: then no overlay of this boot exists (ours and `ostree admin
    /// unlock --transient`'s both set the flag), whatever mounts this namespace can see.
    static func sweepStale() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/var/tmp")) ?? []
        for name in names where "/var/tmp/\(name)".hasPrefix(LiveFiles.overlayPrefix) {
            FileTree.remove("/var/tmp/\(name)")
        }
    }
}
