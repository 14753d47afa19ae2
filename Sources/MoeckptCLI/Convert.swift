import ArgumentParser
import MoECkpt

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Convert a checkpoint between formats (safetensors, sharded safetensors, HDF5, GGUF, .moeckpt), naming layouts and dtypes.",
        discussion: """
            OUT ending in .safetensors is written as one safetensors file, .h5 or .hdf5 as one HDF5 file, .gguf as one \
            GGUF file (llama.cpp's names and keys; with --max-shard-size the parts NAME-0000i-of-0000N.gguf), and .moeckpt \
            as one native file (canonical names, the model description in its header); any other OUT is a directory \
            holding model.safetensors, or with --max-shard-size the shards model-0000i-of-0000N.safetensors and \
            model.safetensors.index.json (config.json, the tokenizer files and generation_config.json are copied \
            along). The output appears only when complete; the input is never modified.

            Examples:
              moeckpt convert model-dir out.safetensors
              moeckpt convert model-dir out-dir --dtype bf16 --max-shard-size 5GB
              moeckpt convert model-dir out.gguf --dtype q8_0
              moeckpt convert model.gguf hf-dir --names hf
              moeckpt convert model-dir mlx-dir --names mlx
            """)

    @Argument(
        help: "The input checkpoint: a safetensors, HDF5, GGUF or .moeckpt file, an index.json, or a directory holding one.",
        completion: .file())
    var input: String

    @Argument(help: "The output: a .safetensors, .h5/.hdf5, .gguf or .moeckpt file, or a directory.", completion: .file())
    var output: String

    @Option(
        help: """
            Cast float tensors to this dtype (round to nearest even); others are copied as they are. \
            q8_0 and q4_0 quantize a .gguf output's weights as ggml does (norms, routers and biases stay F32).
            """)
    var dtype: OutputDType?

    @Option(help: ArgumentHelp("Split the output into shards of at most this size, e.g. 5GB, 500MB, 2GiB.", valueName: "size"))
    var maxShardSize: ByteCount?

    @Option(
        help: ArgumentHelp(
            "Rewrite tensor names into a layout of the model's family and write its description beside them.",
            valueName: "layout"))
    var names: LayoutKey?

    @Option(
        help: ArgumentHelp(
            "HDF5 output: none (contiguous datasets, the default) or gzip[:LEVEL] (chunked deflate).",
            valueName: "none|gzip[:level]"))
    var hdf5Compression: HDF5Compression = .none

    @Flag(help: "Do not verify a .moeckpt input's checksums and padding while copying (they are by default).")
    var noCheck = false

    @Flag(name: [.short, .long], help: "No progress bar and no summary line.")
    var quiet = false

    var options: ConvertOptions {
        ConvertOptions(
            dtype: dtype.flatMap { if case .float(let d) = $0 { d } else { nil } },
            blocks: dtype.flatMap { if case .blocks(let t) = $0 { t } else { nil } },
            maxShardBytes: maxShardSize?.bytes, names: names, hdf5Compression: hdf5Compression,
            checkIntegrity: !noCheck,
            progress: !quiet && TerminalProgressBar.stderrIsTerminal ? TerminalProgressBar() : nil)
    }

    func validate() throws {
        do { _ = try OutputPlan(destination: output, options: options) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        let options = self.options
        let plan = try OutputPlan(destination: output, options: options)
        let result = try Converter.convert(input, plan: plan, checkIntegrity: options.checkIntegrity, progress: options.progress)
        for group in result.leftOut {
            writeToStandardError("moeckpt: note: left out \(group); the forward pass does not use it\n")
        }
        for note in result.notes { writeToStandardError("moeckpt: note: \(note)\n") }
        if !quiet {
            let files = result.files.count == 1 ? "1 file" : "\(result.files.count) files"
            print("wrote \(result.output): \(result.tensors) tensors, \(ByteSize.describe(result.bytes)) in \(files)")
            if !result.uncastable.isEmpty {
                print("kept \(result.uncastable.count) sub-byte float tensors in their dtype (they cannot be cast element-wise)")
            }
        }
    }
}
