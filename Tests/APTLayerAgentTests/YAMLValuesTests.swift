import Foundation
import TestSupport
import Testing
import Yams

@testable import APTLayerAgent

/// agent.yaml's values resolved without regular expressions (YAMLValues) are what Yams' default
/// resolver makes of them, scalar by scalar, over hand-picked cases and thousands of random ones
/// from the characters YAML 1.1's implicit types are made of.
@Suite("YAML values without regular expressions", .tags(.fast))
struct YAMLValuesTests {
    /// A scalar's value as a comparable description: its type and value.
    static func describe(_ value: Any?) -> String {
        switch value {
        case nil: return "absent"
        case is NSNull: return "null"
        case let v as Bool where type(of: v) == Bool.self: return "bool \(v)"
        case let v as Int where type(of: v) == Int.self: return "int \(v)"
        case let v as Double where type(of: v) == Double.self: return v.isNaN ? "float nan" : "float \(v)"
        case let v as String: return "string \(v)"
        case let v as Date: return "date \(v.timeIntervalSince1970)"
        case let v?: return "\(type(of: v)) \(v)"
        }
    }

    static let cases = [
        "", "~", "null", "Null", "NULL", "nULL", "yes", "Yes", "YES", "yEs", "no", "true", "True", "TRUE", "tRUE", "false", "on", "Off",
        "y", "n", "0", "00", "007", "08", "0o17", "0o", "0x1F", "0x", "0X1F", "0b101", "0b", "0b2", "-0x1f", "+0b11", "1_000", "_1",
        "1__0", "-17", "+17", "1:30", "1:30:15", "1:60", "0:30", "1:3", "190:20:30", "1.5", "-1.5", "+1.5", "1.", "1.e5", ".5",
        "-.5", "+.5", ".5e+3", ".5e3", "1e5", "1E+5", "1e-5", "1.5e", "1_0.5_0", "1:30.5", "0:30.5", ".inf", "-.inf", "+.Inf",
        ".INF", ".nan", ".NaN", "-.nan", "nan", "inf", "1.2.3", "127.0.0.1", "127.0.0.1:7443", "abc", "0x1G", "--1", "+-1",
        "2026-12-07", "2026-12-07T17:10:40Z", "12:30", "9223372036854775807", "99999999999999999999", "-0", "+0", "+00", "0_", "0b_", "0x_",
    ]

    @Test func sameValuesAsYamsDefaultResolver() throws {
        // Seeded, so a run is repeatable (five unseeded runs of 20,000 agreed before it was).
        var generator = SeededGenerator(seed: 24)
        let alphabet = Array("0123456789_+-.:eExXoObBinfINFaN")
        var scalars = Self.cases
        for _ in 0..<20000 {
            let length = Int.random(in: 1...7, using: &generator)
            scalars.append(String((0..<length).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        var differing: [String] = []
        var compared = 0
        for scalar in scalars {
            let document = "v: \(scalar)\n"
            guard let theirs = (try? Yams.load(yaml: document)) as? [String: Any] else { continue }
            let ours = try #require(try YAMLValues.load(document) as? [String: Any], "\(scalar)")
            compared += 1
            let (a, b) = (Self.describe(theirs["v"]), Self.describe(ours["v"]))
            // A timestamp stays a string here (Yams made a Date, which the JSON step refused).
            if a.hasPrefix("date ") && b == "string \(scalar)" { continue }
            if a != b { differing.append("\(scalar): Yams \(a), ours \(b)") }
        }
        #expect(compared > 15000)
        #expect(differing == [])
    }

    @Test func quotedScalarsStayStringsAndMergesApply() throws {
        let document = """
            base: &base {a: 1, b: "2"}
            quoted: ["yes", '1', "~", 1]
            merged:
              <<: *base
              b: 3
            mid: &mid {<<: *base, c: 4}
            leaf: {<<: *mid, d: 5}
            tagged: [!!int 12, !!bool yes, !!float 1, !!null x, "0644", !!int "12", !!bool "true", !!float "1.5"]
            """
        let value = try #require(try YAMLValues.load(document) as? [String: Any])
        #expect((value["quoted"] as? [Any]).map { $0.map(Self.describe) } == ["string yes", "string 1", "string ~", "int 1"])
        let merged = try #require(value["merged"] as? [String: Any])
        #expect(Self.describe(merged["a"]) == "int 1" && Self.describe(merged["b"]) == "int 3" && merged.count == 2)
        // Chained merges flatten as Yams flattens them; explicit tags win over the implicit rules.
        let theirs = try #require(try Yams.load(yaml: document) as? [String: Any])
        for key in ["merged", "mid", "leaf"] {
            let (a, b) = (theirs[key] as? [String: Any] ?? [:], value[key] as? [String: Any] ?? [:])
            #expect(a.mapValues(Self.describe) == b.mapValues(Self.describe), "\(key)")
        }
        #expect((value["leaf"] as? [String: Any])?.count == 4)
        #expect((value["tagged"] as? [Any]).map { $0.map(Self.describe) } == ((theirs["tagged"] as? [Any]).map { $0.map(Self.describe) }))
        // Plain values only (an Optional boxed in Any would be refused by the configuration's JSON step).
        #expect(JSONSerialization.isValidJSONObject(value.filter { $0.key != "tagged" }))
        #expect(try JSONSerialization.data(withJSONObject: value["tagged"] as? [Any] ?? []).count > 0)
    }
}
