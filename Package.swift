// swift-tools-version: 6.1
import Foundation
import PackageDescription

// No build flags: the matrix kernels (Sources/CKernels) are one C source compiled once per
// instruction set with function-level target attributes (AVX2 + FMA, AVX-512, and plain vectors
// for any other CPU), picked at run time. So the package builds as a versioned dependency
// (SwiftPM refuses unsafeFlags there) and runs on any x86-64 or arm64 CPU.
//
// The portable configuration (MOECKPT_PORTABLE=1, what any non-x86 host builds) leaves out the
// x86-only code (the AVX kernels, the SSE4.2 CRC-32C): CI builds and tests it too (.ci/run).
#if arch(x86_64)
let portable = ProcessInfo.processInfo.environment["MOECKPT_PORTABLE"] == "1"
#else
let portable = true
#endif
let portableC: [CSetting] = portable ? [.define("MOECKPT_PORTABLE")] : []

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
        .target(name: "MoECkptTensors"),
        // Memory mappings' fault reports; malloc tuning.
        .target(name: "CPlatform"),
        // The matrix products on weights in place, once per instruction set, and the CPU check.
        .target(name: "CKernels", cSettings: portableC),
        // SIMD CPU kernels: linear layers, norms, softmax, activations, rotary embeddings.
        .target(name: "MoECkptKernels", dependencies: ["CKernels", "CPlatform"]),
        // CRC-32C with the SSE4.2 instruction (a table elsewhere): the checksums of the native format.
        .target(name: "CCRC32C", cSettings: portableC),
        // libhdf5 (Debian's libhdf5-dev, found with pkg-config) and its zlib deflate filter.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev", "zlib1g-dev"])]),
        // File formats: memory mappings, safetensors (single and sharded), HDF5, atomic writers.
        .target(name: "MoECkptFormats", dependencies: ["MoECkptTensors", "CHDF5", "CCRC32C", "CPlatform"]),
        // Model descriptions and weight-name layouts.
        .target(name: "MoECkptModels", dependencies: ["MoECkptTensors", "MoECkptFormats"]),
        // The building blocks of forward passes on checkpoint weights: weight matrices read in place,
        // linear layers, routing, attention.
        .target(name: "MoECkptForward", dependencies: ["MoECkptKernels", "MoECkptModels", "MoECkptTensors"]),
        // One folder or file per model family (description, layouts, forward pass) and their registry.
        .target(name: "MoECkptArchitectures", dependencies: ["MoECkptForward", "MoECkptModels", "MoECkptKernels"]),
        // The operations behind each command (inspect, convert, verify, run, bench), re-exporting the modules above.
        .target(
            name: "MoECkpt",
            dependencies: [
                "MoECkptTensors", "MoECkptFormats", "MoECkptModels", "MoECkptKernels",
                "MoECkptForward", "MoECkptArchitectures", "CPlatform",
            ]),
        // The command line: each command parses its arguments and calls MoECkpt. (Its folder's name
        // differs from MoECkpt's by more than case, for case-insensitive file systems.)
        .executableTarget(
            name: "moeckpt",
            // MoECkptArchitectures is re-exported by MoECkpt; naming it here makes incremental builds
            // recompile the CLI when a family's types change.
            dependencies: [
                "MoECkpt", "MoECkptArchitectures", "CPlatform", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/MoeckptCLI"
        ),
        // Fixture paths and temporary directories shared by the test targets.
        .target(name: "MoECkptTestSupport", path: "Tests/Support"),
        .testTarget(name: "MoECkptTensorsTests", dependencies: ["MoECkptTensors", "MoECkptTestSupport"]),
        .testTarget(
            name: "MoECkptKernelsTests", dependencies: ["MoECkptKernels", "MoECkptTensors", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptArchitecturesTests", dependencies: ["MoECkptArchitectures", "MoECkptForward", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptFormatsTests", dependencies: ["MoECkptFormats", "MoECkpt", "MoECkptTestSupport"]),
        .testTarget(name: "MoECkptTests", dependencies: ["MoECkpt", "MoECkptTestSupport"]),
        // Runs the built `moeckpt` binary (listed so that it is built first).
        .testTarget(name: "MoECkptCLITests", dependencies: ["MoECkpt", "moeckpt", "MoECkptTestSupport"]),
    ]
)
