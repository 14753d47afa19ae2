import ArgumentParser
import Foundation
import MoECkpt

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, metadata and MoE structure of a checkpoint (reads headers only).")

    @Argument(help: "A .safetensors file, a sharded checkpoint's index.json, or a directory holding either.")
    var path: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "Show only tensors whose names match this shell glob, e.g. '*.experts.0.*'.")
    var filter: String?

    func run() throws {
        let report = Inspector.report(try Checkpoint.open(path), filter: filter)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Inspector.render(report))
        }
    }
}
