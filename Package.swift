// swift-tools-version: 6.1
import PackageDescription

/// Where libostree's and GLib's headers are (`pkg-config --cflags ostree-1`), for every module that
/// sees `COSTree`, directly or through `OSTree`. Not through `pkgConfig:`, which would also link the
/// libraries: the programs load them on first use instead (Sources/COSTreeLoader).
let ostreeHeaders: [SwiftSetting] = [
    .unsafeFlags(
        [
            "/usr/include/ostree-1", "/usr/include/gio-unix-2.0", "/usr/include/glib-2.0",
            "/usr/lib/x86_64-linux-gnu/glib-2.0/include", "/usr/include/libmount", "/usr/include/blkid",
        ].flatMap { ["-Xcc", "-I\($0)"] })
]

/// Settings shared by every hand-written target.
let swiftSettings: [SwiftSetting] =
    [
        .enableUpcomingFeature("ExistentialAny")
    ] + ostreeHeaders

/// How the programs are linked (bench/footprint.sh measures each lever): with the toolchain's lld;
/// `--no-export-dynamic` undoes the static Swift runtime's `-export-dynamic`, which put every Swift
/// symbol in the dynamic symbol table (5 MB the loader maps and hashes; no caller needs them);
/// packed relative relocations (DT_RELR, glibc 2.36+) replace 3.6 MB of `.rela.dyn`.
let shippedLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "--no-export-dynamic", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])
]

let package = Package(
    name: "apt-layer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "apt-layer", targets: ["apt-layer"]),
        .executable(name: "apt-layerd", targets: ["apt-layerd"]),
        .library(name: "APTLayerEngine", targets: ["APTLayerEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-openapi-async-http-client", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // libostree's C API (headers only: libostree-dev, libarchive-dev). Only the `OSTree` wrapper
        // module may import it.
        .systemLibrary(name: "COSTree"),
        // libostree loaded on first use: a trampoline for each function `OSTree` calls, resolved by
        // dlopen at the first call (`apt-layer --version` or an idle agent never loads it).
        .target(name: "COSTreeLoader"),
        // The one module that owns every GLib pointer.
        .target(
            name: "OSTree",
            dependencies: ["COSTree", "COSTreeLoader"],
            swiftSettings: swiftSettings
        ),
        // fork/exec with the parent-death signal armed before exec (posix_spawn cannot) and pidfd_open.
        .target(name: "CSpawn"),
        // The layering engine: compose, layer, deploy, roll back; apt/dpkg/bwrap as subprocesses.
        .target(
            name: "APTLayerEngine",
            dependencies: [
                "APTLayerModel", "OSTree", "CSpawn",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The vocabulary at the bottom, with no dependency: operations and their operands' checks,
        // layering flags, kernel-argument edits, packages and their diffs, status, states, events,
        // error kinds, the base contract's paths. Every other module imports it.
        .target(
            name: "APTLayerModel",
            swiftSettings: swiftSettings
        ),
        // The one transaction path: `TransactionManager` (journal, queue, events, cancel), used by
        // the agent and by local CLI runs.
        .target(
            name: "APTLayerTransaction",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerJournal",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `apt-layer` command line: verbs, the generated agent client, local runs.
        .target(
            name: "APTLayerCLI",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerJournal", "APTLayerTransaction", "APTLayerAPI", "APTLayerFleet", "APTLayerTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "OpenAPIAsyncHTTPClient", package: "swift-openapi-async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "apt-layer",
            dependencies: ["APTLayerCLI", "APTLayerAgent", "OSTree"],
            swiftSettings: swiftSettings,
            linkerSettings: shippedLinkerSettings
        ),
        // libsystemd: sd_notify (READY, WATCHDOG, STATUS) and journald fields.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // Types, server stubs and the client generated from openapi/openapi.yaml into Generated/
        // (committed; scripts/openapi-generate.sh), and the one place they convert to and from the typed model.
        .target(
            name: "APTLayerAPI",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerJournal",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            swiftSettings: ostreeHeaders
        ),
        // Client TLS from PEM files: the one type behind the CLI's, the driver's and telemetry's clients.
        .target(
            name: "APTLayerTLS",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings
        ),
        // The fleet half (issue 8, in progress): signed policies (OpenSSH signatures, allowed
        // signers, threshold), host identity and buckets, waves, maintenance windows.
        .target(
            name: "APTLayerFleet",
            dependencies: ["APTLayerModel", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The fleet update driver: fetches and trusts the signed policy, stages the release, waits for
        // wave, window and FleetLock slot, reboots, verifies health, rolls back and denylists.
        .target(
            name: "APTLayerDriver",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerJournal", "APTLayerTransaction", "APTLayerFleet", "APTLayerTLS",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Reporting: anonymous countme, status reports through a durable SQLite outbox to an
        // OpenTelemetry collector (OTLP/HTTP JSON logs).
        .target(
            name: "APTLayerTelemetry",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerJournal", "APTLayerFleet", "APTLayerTLS",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The SQLite transaction journal (GRDB over the system libsqlite3).
        .target(
            name: "APTLayerJournal",
            dependencies: ["APTLayerModel", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // The agent: transactions, API handlers, mTLS, configuration, systemd integration.
        .target(
            name: "APTLayerAgent",
            dependencies: [
                "APTLayerEngine", "APTLayerModel", "APTLayerTransaction", "APTLayerAPI", "APTLayerJournal", "APTLayerDriver", "APTLayerFleet",
                "APTLayerTelemetry", "APTLayerTLS", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "apt-layerd",
            dependencies: [
                "APTLayerAgent"
            ],
            swiftSettings: swiftSettings,
            linkerSettings: shippedLinkerSettings
        ),
        // bench/agent.sh's ceiling: a minimal Hummingbird TLS server returning fixed bytes (not shipped).
        .executableTarget(
            name: "apt-layer-bench-server",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every test target shares: `Shell`, `Paths`, `TestBed` (a deployed sysroot on tmpfs),
        // the `.fast` tag.
        .target(
            name: "TestSupport",
            dependencies: ["APTLayerEngine", "APTLayerModel", "OSTree"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APTLayerAgentTests",
            dependencies: [
                "APTLayerAgent", "APTLayerJournal", "APTLayerEngine", "APTLayerModel", "APTLayerAPI", "APTLayerCLI",
                "APTLayerTransaction", "APTLayerFleet", "APTLayerDriver", "APTLayerTelemetry",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTesting", package: "hummingbird"), "TestSupport", "APTLayerTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APTLayerFleetTests",
            dependencies: [
                "APTLayerFleet", "APTLayerTelemetry", "APTLayerJournal", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The update driver's machine, its loop and its journal: pure and in-process, no root.
        .testTarget(
            name: "APTLayerDriverTests",
            dependencies: [
                "APTLayerDriver", "APTLayerJournal", "APTLayerModel", "APTLayerFleet", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APTLayerEngineTests",
            dependencies: ["APTLayerEngine", "APTLayerModel", "OSTree", "TestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
