// swift-tools-version: 6.1
// The OpenAPI generator as a command, outside the product's build: scripts/openapi-generate.sh runs
// it to regenerate Sources/APTLayerAPI/Generated from openapi/openapi.yaml, and CI checks that doing
// so changes nothing.
import PackageDescription

let package = Package(
    name: "openapi-tools",
    dependencies: [.package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3")],
    targets: []
)
