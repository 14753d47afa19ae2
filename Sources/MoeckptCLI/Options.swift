import ArgumentParser
import MoECkpt

/// `--threads`, for the commands that run forward passes.
struct ThreadOptions: ParsableArguments {
    @Option(
        help:
            "Threads (default: the CPUs this process may use: its affinity mask and CPU cgroup quota). Results are identical for any count."
    )
    var threads: Int = RunOptions.defaultThreads

    func validate() throws {
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
    }
}

/// `--config`, for the commands that load a model: a description for a checkpoint that has none
/// (a single .safetensors or .h5 written from a directory).
struct ConfigOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The model's config.json (or Mistral params.json), for a checkpoint that has none beside it.", valueName: "file"),
        completion: .file(extensions: ["json"]))
    var config: String?

    var loader: ModelLoader { ModelLoader(registry: .standard, descriptionFile: config) }
}

/// `--json`, for the commands that print a report.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print the report as JSON.")
    var json = false
}

// Closed sets of option values, parsed once by ArgumentParser (which lists the valid ones when a
// value is not one of them).

extension DType: ExpressibleByArgument {
    /// A cast target: f32, f16 or bf16 (numpy's and torch's spellings too: float16, bfloat16, ...).
    public init?(argument: String) {
        guard let dtype = DType(userSpelling: argument), Cast.targets.contains(dtype) else { return nil }
        self = dtype
    }

    public static var allValueStrings: [String] { [DType.f32, .f16, .bf16].map { $0.name.lowercased() } }
}

/// `convert --dtype`: a float cast target, or a ggml block type for GGUF output.
enum OutputDType: ExpressibleByArgument {
    case float(DType)
    case blocks(GGMLType)

    init?(argument: String) {
        if let dtype = DType(argument: argument) {
            self = .float(dtype)
        } else if let type = GGMLType.allCases.first(where: { $0.isQuantizable && $0.name.lowercased() == argument.lowercased() }) {
            self = .blocks(type)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] {
        DType.allValueStrings + GGMLType.allCases.filter(\.isQuantizable).map { $0.name.lowercased() }
    }
}

extension MLXQuantization.Parameters: ExpressibleByArgument {
    public static var allValueStrings: [String] { ["affine:BITS[:GROUP]", "mxfp4", "mxfp8", "nvfp4"] }
}

extension LayoutKey: ExpressibleByArgument {
    /// A layout of one of the architectures moeckpt knows.
    public init?(argument: String) {
        guard ArchitectureRegistry.standard.layout(LayoutKey(rawValue: argument)) != nil else { return nil }
        self.init(rawValue: argument)
    }

    public static var allValueStrings: [String] { ArchitectureRegistry.standard.layoutKeys.map(\.rawValue) }
}

extension HDF5Compression: ExpressibleByArgument {
    /// `none`, `gzip` or `gzip:LEVEL` (0-9).
    public init?(argument: String) { self.init(argument) }

    public static var allValueStrings: [String] { ["none", "gzip"] + (0...9).map { "gzip:\($0)" } }
}

extension MatrixWeightType: ExpressibleByArgument {
    public init?(argument: String) {
        guard let type = Self.allCases.first(where: { $0.rawValue.lowercased() == argument.lowercased() }) else { return nil }
        self = type
    }

    public static var allValueStrings: [String] { allCases.map { $0.rawValue.lowercased() } }
}

extension BenchTarget: ExpressibleByArgument {}

extension Arithmetic: ExpressibleByArgument {}

/// `--arithmetic`, for the commands that run a model.
struct ArithmeticOption: ParsableArguments {
    @Option(
        help:
            "exact (every weight widened exactly to fp32: transformers' arithmetic) or ggml (llama.cpp's: on Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights, activations quantized to 8 bits per block as ggml quantizes them, and integer products; on BF16 weights, activations rounded to BF16 and products in pairs as AVX512-BF16 computes them; llama.cpp's logits within float rounding; faster for a few tokens, and in prefill on CPUs with AVX512-VNNI or AVX512-BF16)."
    )
    var arithmetic: Arithmetic = .exact
}

/// A size such as 5GB, 500MB or 2GiB.
struct ByteCount: ExpressibleByArgument {
    let bytes: Int

    init?(argument: String) {
        guard let bytes = ByteSize.parse(argument) else { return nil }
        self.bytes = bytes
    }
}
