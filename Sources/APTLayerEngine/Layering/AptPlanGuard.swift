import APTLayerModel
import Foundation

/// What apt may do in one build, checked against apt's final plan just before dpkg runs: a
/// `DPkg::Pre-Install-Pkgs` hook (protocol 3) that refuses kernel and bootloader packages unless
/// allowed, and removals nobody asked for. One `apt-get install` then both resolves and installs,
/// instead of a simulation followed by the same resolution again.
struct AptPlanGuard: Sendable, Equatable {
    /// Package name prefixes apt may not install (empty when `--allow-kernel`).
    var refusedPrefixes: [String]
    /// Packages apt may remove: the ones the request removes.
    var allowedRemovals: [String]

    /// Why a plan was refused, as the hook recorded it.
    enum Refusal: Equatable {
        case kernel(String)
        case removal(String)

        var error: EngineError {
            switch self {
            case .kernel(let name): EngineError(.refused, "refusing to layer kernel/bootloader package \(name) (use --allow-kernel)")
            case .removal(let name):
                EngineError(.unsatisfiable, "this change would also remove \(name); remove it explicitly or keep its dependencies")
            }
        }
    }

    /// The same rules applied to a simulated plan (dry runs and possible no-ops simulate first).
    func refusal(of plan: AptPlan) -> Refusal? {
        if let kernel = plan.installs.first(where: { package in refusedPrefixes.contains { package.name.hasPrefix($0) } }) {
            return .kernel(kernel.name)
        }
        let allowed = Set(allowedRemovals)
        return plan.removals.first { !allowed.contains($0) }.map(Refusal.removal)
    }

    /// The hook script. Protocol 3 gives, after the configuration and a blank line, one line per
    /// action: `name old-version old-arch old-multiarch direction new-version new-arch
    /// new-multiarch action`, the action a .deb path, `**CONFIGURE**` or `**REMOVE**`. A refusal is
    /// written to `record` as `kernel NAME` or `remove NAME` and the hook exits 1, so apt stops
    /// before dpkg changes anything.
    func script(record: String) -> String {
        // Plain sh and its built-ins only: the host may be a minimal image without awk or cat.
        // Names are Debian package names ([a-z0-9+.-]); they need no quoting.
        """
        #!/bin/sh
        # apt-layer: apt's final plan, checked before dpkg runs (DPkg::Pre-Install-Pkgs, protocol 3).
        refused='\(refusedPrefixes.joined(separator: " "))'
        allowed=' \(allowedRemovals.joined(separator: " ")) '
        body=
        set -f
        while IFS= read -r line; do
          if [ -z "$body" ]; then
            [ -z "$line" ] && body=1
            continue
          fi
          set -- $line
          name=${1%%:*}
          case "$9" in
            '**REMOVE**')
              case "$allowed" in
                *" $name "*) ;;
                *) echo "remove $name" > '\(record)'; exit 1 ;;
              esac ;;
            *.deb)
              for prefix in $refused; do
                case "$name" in "$prefix"*) echo "kernel $name" > '\(record)'; exit 1 ;; esac
              done ;;
          esac
        done
        exit 0

        """
    }

    /// Reads what the hook recorded, if it refused.
    static func refusal(recordedAt path: String) -> Refusal? {
        guard let text = FileTree.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        switch parts[0] {
        case "kernel": return .kernel(parts[1])
        case "remove": return .removal(parts[1])
        default: return nil
        }
    }
}
