import APTLayerModel
import Foundation
import OSTree

/// Accounts that maintainer scripts created for a *staged* deployment. On a host that is not
/// booted they are appended to the new deployment's /etc at once; a staged deployment's /etc is
/// merged again by `ostree admin finalize-staged` at shutdown, and a locally edited /etc/passwd (or
/// group, shadow, gshadow) then wins whole over the new one, losing the accounts. So they are kept
/// in `STATE/staged-accounts/CHECKSUM.json` and appended to the booted deployment's /etc at its
/// first locked operation after the reboot (the agent makes one at start).
extension Engine {
    var stagedAccountsDirectory: String { "\(stateDirectory)/staged-accounts" }

    /// Remembers script-created accounts for the staged deployment of `checksum`.
    func rememberStagedAccounts(_ accounts: [String: [String]], checksum: String) throws {
        let nonEmpty = accounts.filter { !$0.value.isEmpty }
        guard !nonEmpty.isEmpty else { return }
        try FileTree.makeDirectory(stagedAccountsDirectory, mode: 0o700)
        let data = try JSONEncoder().encode(nonEmpty)
        try FileTree.replaceContents("\(stagedAccountsDirectory)/\(checksum).json", String(decoding: data, as: UTF8.self))
    }

    /// Appends the remembered accounts of the booted deployment to its /etc (only names that are
    /// missing), then forgets them; forgets those of deployments that no longer exist.
    func applyStagedAccounts(_ sysroot: Sysroot) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stagedAccountsDirectory), !names.isEmpty else { return }
        let live = Set(sysroot.deployments.map(\.checksum))
        for name in names where name.hasSuffix(".json") {
            let path = "\(stagedAccountsDirectory)/\(name)"
            let checksum = String(name.dropLast(5))
            if let booted = sysroot.booted, booted.checksum == checksum {
                guard let text = FileTree.read(path), let accounts = try? JSONDecoder().decode([String: [String]].self, from: Data(text.utf8))
                else { continue }
                let etc = "\(sysroot.directory(of: booted))/etc"
                do {
                    for (file, lines) in accounts where ["passwd", "group", "shadow", "gshadow"].contains(file) {
                        let target = "\(etc)/\(file)"
                        try FileTree.replaceContents(target, SystemUsers.appending(lines, to: FileTree.read(target) ?? ""))
                    }
                    progress.message("Added accounts created by package scripts to /etc: \(accounts.keys.sorted().joined(separator: ", "))")
                } catch {
                    progress.message("warning: could not add script-created accounts to /etc: \(error)")
                    continue
                }
                unlink(path)
            } else if !live.contains(checksum) {
                unlink(path)
            }
        }
    }

    /// Runs the fix-ups a booted host needs after a reboot into a staged deployment (the agent
    /// calls it at start): today, the script-created accounts.
    public func afterBoot() throws {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: stagedAccountsDirectory), !names.isEmpty else { return }
        var options = self.options
        options.waitForLock = true
        try Engine(options: options).locked("apply staged accounts") { _ in }
    }
}
