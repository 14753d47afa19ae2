import ArgumentParser
import Foundation
import MoECkpt

#if canImport(Glibc)
import Glibc
#endif

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run models on stored inputs and check their outputs against stored reference outputs.",
        discussion: """
            Each MODEL (file, directory or sharded checkpoint, any layout) runs on the inputs of its expected \
            file (input_ids or inputs) and every output there is compared element-wise: \
            |actual - expected| <= atol + rtol * |expected|. Exit status 0 when all pass, 1 when any differs, \
            2 on bad input.
            """)

    @Argument(help: "Models to verify; a directory holding expected.safetensors needs no --expected.")
    var models: [String]

    @Option(help: "The expected outputs (safetensors) for every MODEL.")
    var expected: String?

    @Option(help: "Absolute tolerance (default: the file's metadata atol, else 1e-4).")
    var atol: Double?

    @Option(help: "Relative tolerance (default: the file's metadata rtol, else 1e-4).")
    var rtol: Double?

    @Option(help: "Threads (default: all cores). Results are identical for any count.")
    var threads: Int = RunOptions.defaultThreads

    @Flag(help: "Print the reports as JSON.")
    var json = false

    func validate() throws {
        if models.isEmpty { throw ValidationError("give at least one MODEL") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let atol, !(atol.isFinite && atol >= 0) { throw ValidationError("--atol must be a finite, non-negative number") }
        if let rtol, !(rtol.isFinite && rtol >= 0) { throw ValidationError("--rtol must be a finite, non-negative number") }
    }

    func run() throws {
        keepActivationBuffersWarm()
        var reports: [VerifyReport] = []
        for model in models {
            let report = try Verifier.verify(model, expected: expected, atol: atol, rtol: rtol,
                                             options: RunOptions(threads: threads))
            if !json { print(Verifier.render(report)) }
            reports.append(report)
        }
        let failed = reports.filter { !$0.passed }
        let tensors = reports.reduce(0) { $0 + $1.comparisons.count }
        if json {
            try printJSON(reports)
        } else {
            print(failed.isEmpty ? "verify: \(reports.count) models, \(tensors) tensors: all pass"
                                 : "verify: \(failed.count) of \(reports.count) models FAIL (\(failed.map(\.model).joined(separator: ", ")))")
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model's forward pass on the inputs of a safetensors file and write its outputs.",
        discussion: """
            Inputs: input_ids (I64 [batch, tokens]) for causal LMs, inputs (float) for layer and block modules. \
            Outputs, as F32: logits, hidden_states.N and router_logits.N (causal LMs); outputs, aux_loss and \
            router_logits (modules that produce them).
            """)

    @Argument(help: "The model (file, directory or sharded checkpoint).")
    var model: String

    @Option(help: "The safetensors file holding the inputs.")
    var input: String

    @Option(help: "Where to write the outputs (safetensors).")
    var output: String

    @Flag(help: "Also compute the load-balancing loss (aux_loss) and router z-loss (router_z_loss).")
    var auxLosses = false

    @Option(help: "Threads (default: all cores). Results are identical for any count.")
    var threads: Int = RunOptions.defaultThreads

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        keepActivationBuffersWarm()
        let loaded = try ModelLoader.load(model)
        let outputs = try ModelRunner(loaded).run(inputsFrom: try Checkpoint.open(input),
                                                  options: RunOptions(threads: threads, auxLosses: auxLosses))
        try ModelRunner.write(outputs, to: output, metadata: ["producer": "moeckpt run", "model": model])
        print("wrote \(output): \(outputs.keys.sorted(by: naturalOrder).joined(separator: ", "))")
    }
}
