import ArgumentParser
import Foundation
import MoECkpt

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the tensors, metadata and MoE structure of a checkpoint (reads headers only).",
        discussion: """
            Examples:
              moeckpt inspect model-dir
              moeckpt inspect model.gguf --filter '*ffn_*_exps*'
              moeckpt inspect model.moeckpt --check
              moeckpt inspect model-dir --json
            """)

    @Argument(
        help: "A safetensors, HDF5, GGUF or .moeckpt file, a sharded checkpoint's index.json, or a directory holding one.",
        completion: .file())
    var path: String

    @OptionGroup var output: JSONOption
    @OptionGroup var description: ConfigOption

    @Option(help: "Show only tensors whose names match this shell glob, e.g. '*.experts.0.*'.")
    var filter: String?

    @Flag(help: "Verify every tensor checksum of a .moeckpt file (reads all data); exit 2 if any fails.")
    var check = false

    func run() throws {
        let checkpoint = try ModelDirectory.open(path)
        let report = Inspector.report(checkpoint, filter: filter, check: check, loader: description.loader)
        if output.json {
            try printJSON(report)
        } else {
            // Written in blocks of lines: a table can have a million rows.
            var block = ""
            Inspector.render(report) { line in
                block += line
                block += "\n"
                if block.utf8.count > 1 << 16 { print(block, terminator: ""); block = "" }
            }
            print(block, terminator: "")
        }
        if let problem = report.integrity?.problems.first {
            throw FileError(path: path, problem: IntegrityFailure(problem: problem, count: report.integrity!.problems.count))
        }
    }
}

/// The one line a failed `--check` ends with.
struct IntegrityFailure: Error, CustomStringConvertible, Sendable {
    let problem: String
    let count: Int
    var description: String { count == 1 ? problem : "\(problem) (and \(count - 1) more)" }
}
