import ArgumentParser
import MoECkpt

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two checkpoints of one model: their descriptions and weights, naming the likely conversion mistake.",
        discussion: """
            A and B are any checkpoints moeckpt reads (format, naming layout and dtype may differ), of the same architecture. \
            The descriptions are compared key by key (routing first), then the weights tensor by tensor under their canonical \
            names: missing or extra tensors, shapes, dtypes, max |a - b|, NMSE and cosine similarity. A weight that differs \
            is checked against what known conversion mistakes do (transposed experts, gate and up swapped or mixed, experts \
            or rows in another order, another tensor's values, query/key rows in the other rotary order, permuted twice or \
            with the wrong head count, values shifted, scaled, zeroed, overflowed or rounded, a router quantized); B may lack \
            tensors, hold extra ones or hold them transposed, and these are named instead of refused. \
            Without --atol/--rtol, weights of one dtype must be equal and weights of two float dtypes within the coarser one's \
            rounding; quantized weights only report their figures. Then both models run on the same inputs (--input, or \
            --tokens seeded ids): every hidden state, router's logits (with the share of tokens routed to the same experts) \
            and the logits (with top-1 agreement), and the first output where they part. Exit status 0 when equivalent, 1 \
            when not, 2 on bad input.

            Examples:
              moeckpt compare model-dir converted.gguf
              moeckpt compare model-dir mlx-dir --json
            """)

    @Argument(help: "The original checkpoint.", completion: .file())
    var a: String

    @Argument(help: "The checkpoint to check against it.", completion: .file())
    var b: String

    @Option(help: "Absolute tolerance for weights (|a - b| <= atol + rtol * |a|).")
    var atol: Double?

    @Option(help: "Relative tolerance for weights.")
    var rtol: Double?

    @Option(help: "Seeded token ids both models run on, when no --input is given.")
    var tokens = 16

    @Option(help: "A file (safetensors, HDF5 or .moeckpt) with the inputs both models run on (input_ids or inputs).", completion: .file())
    var input: String?

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var description: ConfigOption
    @OptionGroup var output: JSONOption

    func validate() throws {
        if tokens < 1 || tokens > 1 << 20 { throw ValidationError("--tokens must be between 1 and 1048576") }
        for (name, value) in [("--atol", atol), ("--rtol", rtol)] {
            if let value, !(value.isFinite && value >= 0) { throw ValidationError("\(name) must be a finite, non-negative number") }
        }
    }

    func run() throws {
        let tolerance = (atol == nil && rtol == nil) ? nil : WeightTolerance(atol: atol ?? 0, rtol: rtol ?? 0)
        let report = try Comparer.compare(
            a, b, tolerance: tolerance, inputs: input, tokens: tokens, options: RunOptions(threads: threads.threads),
            loader: description.loader)
        if output.json { try printJSON(report) } else { print(Comparer.render(report)) }
        if !report.equivalent { throw ExitCode(1) }
    }
}
