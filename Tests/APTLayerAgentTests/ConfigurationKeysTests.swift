import Foundation
import TestSupport
import Testing

@testable import APTLayerAgent

/// agent.yaml and its drop-ins refuse keys no configuration type reads, naming the file, the line
/// and the nearest known key (a typo was silently ignored before).
@Suite("configuration keys", .tags(.fast))
struct ConfigurationKeysTests {
    /// A directory of YAML files for one test.
    struct Files {
        let dir = NSTemporaryDirectory() + "apt-layer-config-\(UUID().uuidString)"

        init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }

        func write(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
            return "\(dir)/\(name)"
        }

        /// The one-line error loading `files` gives.
        func error(_ files: [String]) -> String? {
            do {
                _ = try AgentConfiguration.load(files: files)
                return nil
            } catch {
                return "\(error)"
            }
        }
    }

    @Test func aTypoAtTheTopLevelNamesFileLineAndTheKeyMeant() throws {
        let files = try Files()
        let main = try files.write("agent.yaml", "sysroot: /\nlisten: \"127.0.0.1:7443\"\nqueue-lenght: 3\n")
        #expect(files.error([main]) == #"\#(main):3: unknown key "queue-lenght"; did you mean "queue-length"?"#)
    }

    @Test func aTypoInADropInsSectionNamesTheDropIn() throws {
        let files = try Files()
        let main = try files.write("agent.yaml", "fleet:\n  name: lab\n  stream: stable\n  policy-url: https://policy.example/p.yaml\n")
        let dropIn = try files.write("50-fleet.yaml", "fleet:\n  max-attempts: 2\n  reboot-comand: [systemctl, reboot]\n")
        #expect(files.error([main, dropIn]) == #"\#(dropIn):3: unknown key "reboot-comand" in fleet; did you mean "reboot-command"?"#)
        let tls = try files.write("tls.yaml", "tls:\n  certificate: /c\n  client_ca: /ca\n")
        #expect(files.error([tls]) == #"\#(tls):3: unknown key "client_ca" in tls; did you mean "client-ca"?"#)
    }

    @Test func listItemsAreCheckedAndUnlikeKeysGetNoSuggestion() throws {
        let files = try Files()
        let windows = try files.write(
            "w.yaml",
            """
            fleet:
              name: lab
              stream: stable
              policy-url: https://policy.example/p.yaml
              windows:
                - { days: [Sat], start: "02:00", length: 2h }
                - days: [Sun]
                  start: "03:00"
                  length: 1h
                  zone: Europe/Berlin
            """)
        #expect(files.error([windows]) == #"\#(windows):10: unknown key "zone" in fleet.windows.1"#)
        let telemetry = try files.write("t.yaml", "telemetry:\n  countme: false\n  colour: blue\n")
        #expect(files.error([telemetry]) == #"\#(telemetry):3: unknown key "colour" in telemetry"#)
    }

    /// Free-form mappings (identities → roles) take any key; the shipped example and the
    /// defaults load; a key the strict decoder reads is never reported.
    @Test func knownAndFreeFormKeysLoad() throws {
        let files = try Files()
        let roles = try files.write("r.yaml", "roles: { alice: admin, \"uid:1000\": reader, ci-bot: operator }\nsocket: \"\"\n")
        #expect(files.error([roles]) == nil)
        #expect(files.error(["\(Paths.packageRoot)/deploy/agent/agent.yaml"]) == nil)
        let empty = try files.write("e.yaml", "")
        #expect(files.error([empty]) == nil)
    }

    @Test func suggestionsAreNearestAndBounded() {
        #expect(ConfigurationKeys.distance("listn", "listen") == 1)
        #expect(ConfigurationKeys.distance("", "abc") == 3)
        #expect(ConfigurationKeys.distance("kitten", "sitting") == 3)
        let unknown = ConfigurationKeys.Unknown(path: ["sokcet"], known: ["socket", "sysroot", "os"])
        #expect(unknown.suggestion == "socket")
        #expect(ConfigurationKeys.Unknown(path: ["zzzzzz"], known: ["socket"]).suggestion == nil)
    }
}
