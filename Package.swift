// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Kernels and dtype conversions are built for x86-64 with AVX2 and FMA (haswell and later; the
// CLI and the library's entry points refuse older CPUs with a message). Without a target CPU every
// SIMD fused multiply-add becomes a libm call (see docs/DESIGN.md). The matrix kernels are built a
// second time for AVX-512 (Zen 4/5) and chosen at run time.
//
// The portable configuration (any other host, such as arm64, or MOECKPT_PORTABLE=1) uses no
// target CPU: generic SIMD code the compiler maps to the host's vectors, slower on x86 but the same
// results. CI builds and tests it too (.ci/run).
#if arch(x86_64)
let portable = ProcessInfo.processInfo.environment["MOECKPT_PORTABLE"] == "1"
#else
let portable = true
#endif
let requiresX86_64_v3: [SwiftSetting] = portable ? [] : [.define("REQUIRES_X86_64_V3")]
let fastCPU: [SwiftSetting] = portable ? [] : [.unsafeFlags(["-target-cpu", "haswell"])]
let avx512CPU: [SwiftSetting] = (portable ? [] : [.unsafeFlags(["-target-cpu", "znver4"])]) + [.define("WIDE_VECTORS")]

let package = Package(
    name: "moeckpt",
    products: [
        .library(name: "MoECkpt", targets: ["MoECkpt"]),
        .executable(name: "moeckpt", targets: ["moeckpt"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // Element types, shapes, tensor views and exact dtype conversions.
        .target(name: "MoECkptTensors", swiftSettings: fastCPU),
        // The matrix products (Sources/MatrixKernels, linked into both folders), once per instruction set.
        // What the CPU can run; malloc tuning.
        .target(name: "CPlatform"),
        .target(name: "MoECkptMatrixAVX2", swiftSettings: fastCPU),
        .target(name: "MoECkptMatrixAVX512", swiftSettings: avx512CPU),
        // SIMD CPU kernels: linear layers, norms, softmax, activations, rotary embeddings.
        .target(
            name: "MoECkptKernels", dependencies: ["MoECkptMatrixAVX2", "MoECkptMatrixAVX512", "CPlatform"],
            swiftSettings: fastCPU),
        // CRC-32C with the SSE4.2 instruction: the checksums of the native format.
        .target(name: "CCRC32C"),
        // libhdf5 (Debian's libhdf5-dev, found with pkg-config) and its zlib deflate filter.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev", "zlib1g-dev"])]),
        // File formats: memory mappings, safetensors (single and sharded), HDF5, atomic writers.
        .target(name: "MoECkptFormats", dependencies: ["MoECkptTensors", "CHDF5", "CCRC32C", "CPlatform"]),
        // Model descriptions and weight-name layouts.
        .target(name: "MoECkptModels", dependencies: ["MoECkptTensors", "MoECkptFormats"]),
        // The building blocks of forward passes on checkpoint weights: weight matrices read in place,
        // linear layers, routing, attention.
        .target(name: "MoECkptForward", dependencies: ["MoECkptKernels", "MoECkptModels", "MoECkptTensors"], swiftSettings: fastCPU),
        // One folder or file per model family (description, layouts, forward pass) and their registry.
        .target(
            name: "MoECkptArchitectures", dependencies: ["MoECkptForward", "MoECkptModels", "MoECkptKernels"],
            swiftSettings: fastCPU),
        // The operations behind each command (inspect, convert, verify, run, bench), re-exporting the modules above.
        .target(
            name: "MoECkpt",
            dependencies: [
                "MoECkptTensors", "MoECkptFormats", "MoECkptModels", "MoECkptKernels",
                "MoECkptForward", "MoECkptArchitectures", "CPlatform",
            ],
            swiftSettings: requiresX86_64_v3),
        // The command line: each command parses its arguments and calls MoECkpt. (Its folder's name
        // differs from MoECkpt's by more than case, for case-insensitive file systems.)
        .executableTarget(
            name: "moeckpt",
            // MoECkptArchitectures is re-exported by MoECkpt; naming it here makes incremental builds
            // recompile the CLI when a family's types change.
            dependencies: [
                "MoECkpt", "MoECkptArchitectures", "CPlatform", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/MoeckptCLI",
            swiftSettings: requiresX86_64_v3
        ),
        // Fixture paths and temporary directories shared by the test targets.
        .target(name: "MoECkptTestSupport", path: "Tests/Support"),
        .testTarget(name: "MoECkptTensorsTests", dependencies: ["MoECkptTensors", "MoECkptTestSupport"]),
        // The AVX-512 build's tiles compiled for AVX2, so that their logic is tested on any machine
        // (the instruction selection is the compiler's).
        .target(
            name: "MatrixWideLogic", path: "Tests/MatrixWideLogic",
            swiftSettings: fastCPU + [.define("WIDE_VECTORS")]),
        .testTarget(
            name: "MoECkptKernelsTests", dependencies: ["MoECkptKernels", "MoECkptTensors", "MatrixWideLogic", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptArchitecturesTests", dependencies: ["MoECkptArchitectures", "MoECkptForward", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptFormatsTests", dependencies: ["MoECkptFormats", "MoECkpt", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptTests", dependencies: ["MoECkpt", "MoECkptTestSupport"]),
        // Runs the built `moeckpt` binary (listed so that it is built first).
        .testTarget(name: "MoECkptCLITests", dependencies: ["MoECkpt", "moeckpt", "MoECkptTestSupport"]),
    ]
)
