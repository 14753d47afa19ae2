// swift-tools-version: 6.1
import PackageDescription

// Kernels and dtype conversions are built for a CPU with AVX2 and FMA (haswell and later): without it every
// SIMD fused multiply-add becomes a libm call (see docs/DESIGN.md). Only the x86_64 Linux machines
// this project targets are assumed.
let fastCPU: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]

let package = Package(
    name: "moeckpt",
    products: [
        .library(name: "MoECkpt", targets: ["MoECkpt"]),
        .executable(name: "moeckpt", targets: ["moeckpt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Element types, shapes, tensor views and exact dtype conversions.
        .target(name: "MoECkptTensors", swiftSettings: fastCPU),
        // File formats: memory mappings, safetensors (single and sharded), atomic writers.
        .target(name: "MoECkptFormats", dependencies: ["MoECkptTensors"]),
        // Model descriptions and weight-name layouts.
        .target(name: "MoECkptModels", dependencies: ["MoECkptTensors", "MoECkptFormats"]),
        // The operations behind each command (inspect, convert), re-exporting the modules above.
        .target(name: "MoECkpt", dependencies: ["MoECkptTensors", "MoECkptFormats", "MoECkptModels"]),
        .executableTarget(
            name: "moeckpt",
            dependencies: ["MoECkpt", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fixture paths and temporary directories shared by the test targets.
        .target(name: "MoECkptTestSupport", path: "Tests/Support"),
        .testTarget(name: "MoECkptTensorsTests", dependencies: ["MoECkptTensors", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptFormatsTests", dependencies: ["MoECkptFormats", "MoECkpt", "MoECkptTestSupport"]),
        // Runs the built `moeckpt` binary (listed so that it is built first).
        .testTarget(name: "MoECkptCLITests", dependencies: ["MoECkpt", "moeckpt", "MoECkptTestSupport"]),
    ]
)
