// swift-tools-version: 6.1
// A package that depends on a tagged release of moeckpt, as any user's package would: SwiftPM
// builds a versioned dependency only when none of its products' targets carries unsafe flags.
// scripts/check_consumer.sh points MOECKPT_URL at a clone of this repository and MOECKPT_VERSION
// at its version tag.
import Foundation
import PackageDescription

let environment = ProcessInfo.processInfo.environment
let url = environment["MOECKPT_URL"] ?? "https://github.com/moeckpt/moeckpt.git"
let version = Version(environment["MOECKPT_VERSION"] ?? "0.2.0") ?? "0.2.0"

let package = Package(
    name: "MoECkptConsumer",
    dependencies: [.package(url: url, from: version)],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "MoECkpt", package: "moeckpt")])
    ]
)
