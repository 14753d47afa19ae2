// swift-tools-version: 6.1
// libFuzzer targets for moeckpt's parsers of untrusted input. Built only by scripts/fuzz.sh
// (with -sanitize=fuzzer,address); the main package's build and tests do not see them.
import PackageDescription

let fuzzers = [
    "FuzzSafetensorsHeader", "FuzzShardIndex", "FuzzNative", "FuzzConfig", "FuzzHDF5", "FuzzNativeModel", "FuzzGGUF",
    "FuzzTokenizer",
]

let package = Package(
    name: "moeckpt-fuzz",
    dependencies: [.package(name: "moeckpt", path: "..")],
    targets: [.target(name: "FuzzDriver")]
        + fuzzers.map {
            .executableTarget(
                name: $0, dependencies: ["FuzzDriver", .product(name: "MoECkpt", package: "moeckpt")],
                swiftSettings: [.unsafeFlags(["-parse-as-library"])])
        }
)
