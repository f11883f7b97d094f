import Foundation

extension FleetPolicy {
    /// How hosts take reboot slots: a FleetLock server and the group they count against.
    public struct Reboot: Codable, Sendable, Equatable {
        /// Base URL of a FleetLock server (`POST {base}/v1/pre-reboot`); none: no slots, reboot
        /// when eligible and in a window.
        public var fleetlock: String?
        /// The FleetLock group: a literal name, or `wave` for the host's wave name. Default
        /// `default` (as Zincati).
        public var group: String?
        /// Boots a staged release gets before the boot menu falls back to the previous
        /// deployment (1...9); none: the agent's `boot-tries` (default 3). docs/boot-counting.md.
        public var bootTries: Int?
        /// Run in order once the host holds its reboot slot, before finalization and the reboot
        /// (drain the host's workloads). A failing one postpones the reboot: the slot is given
        /// back and the host waits ``hookRetry`` before it asks again.
        public var preReboot: [RebootHook]?
        /// Run in order after the release passed its health checks (rejoin). A failure is
        /// reported in the driver's reason; the release stays.
        public var postBoot: [RebootHook]?
        /// How long a failed pre-reboot hook postpones the reboot (default 10m).
        public var hookRetry: PolicyDuration?

        public init(
            fleetlock: String? = nil, group: String? = nil, bootTries: Int? = nil, preReboot: [RebootHook]? = nil, postBoot: [RebootHook]? = nil,
            hookRetry: PolicyDuration? = nil
        ) {
            self.fleetlock = fleetlock
            self.group = group
            self.bootTries = bootTries
            self.preReboot = preReboot
            self.postBoot = postBoot
            self.hookRetry = hookRetry
        }

        enum CodingKeys: String, CodingKey {
            case fleetlock, group
            case bootTries = "boot-tries"
            case preReboot = "pre-reboot"
            case postBoot = "post-boot"
            case hookRetry = "hook-retry"
        }

        /// The group this host asks in, given its wave.
        public func group(wave: String?) -> String {
            switch group {
            case nil, "": "default"
            case "wave": wave ?? "default"
            case let literal?: literal
            }
        }
    }

    /// A reboot hook: exactly one of a command (absolute path first) that must exit 0, or a
    /// systemd unit to start and wait for (a oneshot's run must succeed); within `timeout`
    /// (default 5m, at most 1h).
    public struct RebootHook: Codable, Sendable, Equatable {
        public var command: [String]?
        public var unit: String?
        public var timeout: PolicyDuration?

        public init(command: [String]? = nil, unit: String? = nil, timeout: PolicyDuration? = nil) {
            self.command = command
            self.unit = unit
            self.timeout = timeout
        }

        /// The hook as logs and reasons name it.
        public var label: String { unit.map { "unit \($0)" } ?? "command \((command ?? []).joined(separator: " "))" }

        func validate() throws {
            guard (command != nil) != (unit != nil) else { throw PolicyError.invalid("a reboot hook has exactly one of command, unit") }
            if let command, command.isEmpty || !command[0].hasPrefix("/") {
                throw PolicyError.invalid("a reboot hook command starts with an absolute path")
            }
            if let unit, unit.isEmpty || unit.contains("/") || unit.contains(where: \.isWhitespace) {
                throw PolicyError.invalid("a reboot hook unit is a systemd unit name, got \(unit.debugDescription)")
            }
            if let timeout, !(1...3600).contains(timeout.seconds) { throw PolicyError.invalid("a reboot hook timeout is 1s to 1h") }
        }
    }

    /// What makes a freshly booted release healthy.
    public struct Health: Codable, Sendable, Equatable {
        /// How long the checks may take to pass after boot (default 10m).
        public var timeout: PolicyDuration?
        /// How long they must keep passing afterwards (default 60s).
        public var settle: PolicyDuration?
        public var checks: [HealthCheck]?

        public init(timeout: PolicyDuration? = nil, settle: PolicyDuration? = nil, checks: [HealthCheck]? = nil) {
            self.timeout = timeout
            self.settle = settle
            self.checks = checks
        }
    }

    /// One health check: exactly one of a systemd unit that must be active, a command that must
    /// exit 0, or an HTTP URL that must answer with `expect` (default 200).
    public struct HealthCheck: Codable, Sendable, Equatable {
        public var unit: String?
        public var command: [String]?
        public var http: String?
        public var expect: Int?
        /// Per-attempt limit for a command or request (default 30s).
        public var timeout: PolicyDuration?

        public init(unit: String? = nil, command: [String]? = nil, http: String? = nil, expect: Int? = nil, timeout: PolicyDuration? = nil) {
            self.unit = unit
            self.command = command
            self.http = http
            self.expect = expect
            self.timeout = timeout
        }

        func validate() throws {
            let kinds = [unit != nil, command != nil, http != nil].filter { $0 }.count
            guard kinds == 1 else { throw PolicyError.invalid("a health check has exactly one of unit, command, http") }
            if let command, command.isEmpty || !command[0].hasPrefix("/") {
                throw PolicyError.invalid("a health check command starts with an absolute path")
            }
            if let http {
                guard let url = URL(string: http), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                    throw PolicyError.invalid("health check http must be an http(s) URL, got \(http.debugDescription)")
                }
            }
            if let expect, !(100...599).contains(expect) { throw PolicyError.invalid("health check expect must be an HTTP status") }
        }
    }

    /// What the agent reports, and where (docs/telemetry.md).
    public struct Telemetry: Codable, Sendable, Equatable {
        /// false turns countme off on every host of the fleet.
        public var countme: Bool?
        /// The collector's OTLP/HTTP logs URL.
        public var report: String?
        /// How often a host reports when nothing changed.
        public var heartbeat: PolicyDuration?

        public init(countme: Bool? = nil, report: String? = nil, heartbeat: PolicyDuration? = nil) {
            self.countme = countme
            self.report = report
            self.heartbeat = heartbeat
        }
    }
}
