// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "MixMoE",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MixMoE", targets: ["MixMoE"]),
        .executable(name: "mixmoe", targets: ["mixmoe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Thin C shim over OpenBLAS: prototypes we need, linked against libopenblas.
        .target(
            name: "CBLAS",
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        .target(
            name: "MixMoE",
            dependencies: ["CBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "mixmoe",
            dependencies: [
                "MixMoE",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "MixMoETests",
            dependencies: ["MixMoE", "mixmoe"],  // mixmoe: built for the subprocess tests
            resources: [.copy("Fixtures")]
        ),
    ]
)
