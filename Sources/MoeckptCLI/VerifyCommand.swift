import ArgumentParser
import Foundation
import MoECkpt

#if canImport(Glibc)
import Glibc
#endif

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run models on stored inputs and check their outputs against stored reference outputs.",
        discussion: """
            Each MODEL (a safetensors, HDF5 or .moeckpt file, a directory or a sharded checkpoint, in any layout) runs on the inputs of its expected \
            file (input_ids or inputs) and every output there is compared element-wise: \
            |actual - expected| <= atol + rtol * |expected|. Exit status 0 when all pass, 1 when any differs, \
            2 on bad input.

            Examples:
              moeckpt verify model-dir
              moeckpt verify converted.gguf --expected model-dir/expected.safetensors
              moeckpt verify model.gguf --expected llama-logits.safetensors --arithmetic ggml --atol 1e-5
              moeckpt verify model.safetensors --config config.json --expected expected.safetensors --atol 1e-3
            """)

    @Argument(help: "Models to verify; a directory holding expected.safetensors needs no --expected.", completion: .file())
    var models: [String]

    @Option(help: "The expected outputs for every MODEL (safetensors, HDF5 or .moeckpt).", completion: .file())
    var expected: String?

    @Option(help: "Absolute tolerance (default: the file's metadata atol, else 1e-4).")
    var atol: Double?

    @Option(help: "Relative tolerance (default: the file's metadata rtol, else 1e-4).")
    var rtol: Double?

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var arithmetic: ArithmeticOption
    @OptionGroup var description: ConfigOption
    @OptionGroup var output: JSONOption

    func validate() throws {
        if models.isEmpty { throw ValidationError("give at least one MODEL") }
        if let atol, !(atol.isFinite && atol >= 0) { throw ValidationError("--atol must be a finite, non-negative number") }
        if let rtol, !(rtol.isFinite && rtol >= 0) { throw ValidationError("--rtol must be a finite, non-negative number") }
    }

    func run() throws {
        keepActivationBuffersWarm()
        var reports: [VerifyReport] = []
        for model in models {
            let report = try Verifier.verify(
                model, expected: expected, atol: atol, rtol: rtol,
                options: RunOptions(threads: threads.threads, arithmetic: arithmetic.arithmetic), loader: description.loader)
            if !output.json { print(Verifier.render(report)) }
            reports.append(report)
        }
        let failed = reports.filter { !$0.passed }
        let tensors = reports.reduce(0) { $0 + $1.comparisons.count }
        if output.json {
            try printJSON(reports)
        } else {
            print(
                failed.isEmpty
                    ? "verify: \(reports.count) models, \(tensors) tensors: all pass"
                    : "verify: \(failed.count) of \(reports.count) models FAIL (\(failed.map(\.model).joined(separator: ", ")))")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}
