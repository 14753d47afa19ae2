import ArgumentParser
import MoECkpt

#if canImport(Glibc)
import Glibc
#endif

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint: single file to sharded and back, and float dtype casts.",
        discussion: """
            OUT ending in .safetensors (or .h5/.hdf5, HDF5) is written as one file; any other OUT is a directory holding \
            model.safetensors, or with --max-shard-size the shards model-0000i-of-0000N.safetensors and \
            model.safetensors.index.json (config.json is copied along). The output appears only when \
            complete; the input is never modified.
            """)

    @Argument(help: "The input checkpoint (file, index.json or directory).")
    var input: String

    @Argument(help: "The output file (.safetensors) or directory.")
    var output: String

    @Option(help: "Cast float tensors to f32, f16 or bf16 (round to nearest even); others are copied as they are.")
    var dtype: String?

    @Option(help: "Split the output into shards of at most this size, e.g. 5GB, 500MB, 2GiB.")
    var maxShardSize: String?

    @Option(help: ArgumentHelp(
        "Rewrite tensor names into a layout and write its description beside them: hf, hf-fused, mistral, gguf, mlx (Mixtral), or a seed module's state_dict names.",
        valueName: "layout"))
    var names: String?

    @Option(help: ArgumentHelp("HDF5 output: none (contiguous datasets, the default) or gzip[:LEVEL] (chunked deflate).",
                               valueName: "none|gzip[:level]"))
    var hdf5Compression: String?

    @Flag(help: "Do not verify a .moeckpt input's checksums and padding while copying (they are by default).")
    var noCheck = false

    @Flag(name: [.short, .long], help: "No progress bar and no summary line.")
    var quiet = false

    func validate() throws {
        if let dtype, DType(userSpelling: dtype).map(Cast.targets.contains) != true {
            throw ValidationError("--dtype must be f32, f16 or bf16, not '\(dtype)'")
        }
        if let names {
            guard NamingLayout.named(names) != nil else {
                throw ValidationError("--names must be one of \(NamingLayout.all.map(\.key).joined(separator: ", ")), not '\(names)'")
            }
            if output.hasSuffix(".safetensors") {
                throw ValidationError("with --names, OUT is a directory (the weights and their description file)")
            }
        }
        if let hdf5Compression, HDF5Compression(hdf5Compression) == nil {
            throw ValidationError("--hdf5-compression must be none, gzip or gzip:LEVEL (0-9), not '\(hdf5Compression)'")
        }
        if OutputFormat.of(output) == .hdf5 && (maxShardSize != nil || names != nil) {
            throw ValidationError("HDF5 output is one file: --max-shard-size and --names write safetensors directories")
        }
        if let maxShardSize, ByteSize.parse(maxShardSize) == nil {
            throw ValidationError("--max-shard-size must be a size such as 5GB or 500MB, not '\(maxShardSize)'")
        }
    }

    func run() throws {
        let showProgress = !quiet && TerminalProgressBar.stderrIsTerminal
        let options = ConvertOptions(dtype: dtype.flatMap(DType.init(userSpelling:)),
                                     maxShardBytes: maxShardSize.flatMap(ByteSize.parse), names: names,
                                     hdf5Compression: hdf5Compression.flatMap(HDF5Compression.init) ?? .none,
                                     checkIntegrity: !noCheck, progress: showProgress ? TerminalProgressBar() : nil)
        let result = try Converter.convert(input, to: output, options: options)
        if !quiet {
            let files = result.files.count == 1 ? "1 file" : "\(result.files.count) files"
            print("wrote \(result.output): \(result.tensors) tensors, \(ByteSize.describe(result.bytes)) in \(files)")
            if !result.uncastable.isEmpty {
                print("kept \(result.uncastable.count) sub-byte float tensors in their dtype (they cannot be cast element-wise)")
            }
        }
    }
}
