// swift-tools-version: 6.0
import PackageDescription
import Foundation

// The numeric code is compiled for the build machine's vector unit when it has AVX2 + FMA (the
// build and the runs happen on the same machine here): element-wise loops (norms, SwiGLU, AdamW,
// softmax) then use 256-bit registers instead of SSE2's 128. MIXMOE_TARGET_CPU overrides the
// choice (e.g. `MIXMOE_TARGET_CPU=generic` for a portable binary, `haswell`, `znver2`).
let cpuFlags: Set<Substring> = {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    return Set(line.split(separator: " "))
}()
let targetCPU: String? = {
    if let cpu = ProcessInfo.processInfo.environment["MIXMOE_TARGET_CPU"] { return cpu == "generic" ? nil : cpu }
    let haswell: [Substring] = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "abm", "movbe", "popcnt"]
    return haswell.allSatisfy(cpuFlags.contains) ? "haswell" : nil
}()
let releaseFlags = ["-Ounchecked"] + (targetCPU.map { ["-target-cpu", $0] } ?? [])

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
            swiftSettings: [.unsafeFlags(releaseFlags, .when(configuration: .release))]
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
