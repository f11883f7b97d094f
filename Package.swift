// swift-tools-version: 6.1
import PackageDescription

/// Settings shared by every hand-written target.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "apt-layer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "apt-layer", targets: ["apt-layer"]),
        .library(name: "APTLayerEngine", targets: ["APTLayerEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // libostree's C API. Only the `OSTree` wrapper module may import it.
        .systemLibrary(
            name: "COSTree",
            pkgConfig: "ostree-1",
            providers: [.apt(["libostree-dev"])]
        ),
        // The one module that owns every GLib pointer.
        .target(
            name: "OSTree",
            dependencies: ["COSTree"],
            swiftSettings: swiftSettings
        ),
        // The layering engine: compose, layer, deploy, roll back; apt/dpkg/bwrap as subprocesses.
        .target(
            name: "APTLayerEngine",
            dependencies: [
                "OSTree",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `apt-layer` command line.
        .executableTarget(
            name: "apt-layer",
            dependencies: [
                "APTLayerEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "APTLayerEngineTests",
            dependencies: ["APTLayerEngine", "OSTree"],
            swiftSettings: swiftSettings
        ),
    ]
)
