// swift-tools-version: 6.0
import Foundation
import PackageDescription

// Release builds use the default `-O`: every `precondition` stays a check, the binary runs on any
// x86-64 (or arm64) CPU, and the package has no unsafe flags, so other packages can depend on it
// by version. MIXMOE_TARGET_CPU=NAME (e.g. `haswell`, `znver2`, `native`) opts in to code for one
// CPU family (256-bit vectors in the element-wise loops); its measured effect is in
// docs/PERFORMANCE.md ("Compiler flags"). It is an unsafe flag, so SwiftPM accepts it only when
// this package is built as the root package (or consumed by path or branch).
let targetCPU = ProcessInfo.processInfo.environment["MIXMOE_TARGET_CPU"].flatMap { $0.isEmpty || $0 == "generic" ? nil : $0 }
let releaseSettings: [SwiftSetting] = targetCPU.map { [.unsafeFlags(["-target-cpu", $0], .when(configuration: .release))] } ?? []

let package = Package(
    name: "MixMoE",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MixMoE", targets: ["MixMoE"]),
        .executable(name: "mixmoe", targets: ["mixmoe"]),
        .executable(name: "mixmoe-serve", targets: ["mixmoe-serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // HTTP for `mixmoe-serve` (MixMoEServer only; the library, `mixmoe` and its tests do not need it).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // Thin C shim over OpenBLAS: prototypes we need, linked against libopenblas.
        .target(
            name: "CBLAS",
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        // Thin C shim over Open MPI, loaded at run time (dlopen): builds need no MPI.
        .target(name: "CMPI"),
        .target(
            name: "MixMoE",
            dependencies: ["CBLAS", "CMPI"],
            swiftSettings: releaseSettings
        ),
        // What the front ends share: option groups (a flag means the same everywhere), error policy.
        .target(
            name: "MixMoECommandLine",
            dependencies: ["MixMoE", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // HTTP routes over the library's ServingEngine (a thin front end).
        .target(
            name: "MixMoEServer",
            dependencies: ["MixMoE", .product(name: "Hummingbird", package: "hummingbird")]
        ),
        .executableTarget(
            name: "mixmoe",
            dependencies: ["MixMoE", "MixMoECommandLine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The server: an executable of its own, so `mixmoe` (and the demo's clean build) does not
        // link Hummingbird and SwiftNIO. `mixmoe serve` runs it.
        .executableTarget(
            name: "mixmoe-serve",
            dependencies: [
                "MixMoE", "MixMoECommandLine", "MixMoEServer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "MixMoETests",
            dependencies: ["MixMoE", "mixmoe"],  // mixmoe: built for the subprocess tests
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "MixMoEServerTests",
            dependencies: [
                // mixmoe: built for the `mixmoe serve` process test. The tests run the server on a
                // loopback port with their own socket client (HummingbirdTesting would add
                // AsyncHTTPClient and BoringSSL to every clean build)
                "MixMoEServer", "MixMoE", "mixmoe", "mixmoe-serve",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
    ]
)
