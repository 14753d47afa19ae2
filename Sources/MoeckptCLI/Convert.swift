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
              moeckpt convert model-dir mlx-4bit --names mlx --quantize affine:4:64

            On a cluster, one job per output shard (docs/CLUSTER.md):
              moeckpt convert model-dir out-dir --max-shard-size 5GB --plan plan.json
              moeckpt convert --plan plan.json --job auto     # each array task: SLURM_ARRAY_TASK_ID, ...
              moeckpt convert --plan plan.json --finish       # checks every shard, writes the index
            """)

    @Argument(
        help: "The input checkpoint: a safetensors, HDF5, GGUF or .moeckpt file, an index.json, or a directory holding one.",
        completion: .file())
    var input: String?

    @Argument(help: "The output: a .safetensors, .h5/.hdf5, .gguf or .moeckpt file, or a directory.", completion: .file())
    var output: String?

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
            "Quantize the weights as mlx-lm does (--names mlx): affine:BITS[:GROUP] (bits 1-6 or 8, groups of 32, 64 or 128; 64 by default), "
                + "mxfp4, mxfp8 or nvfp4, bit for bit as mlx.core.quantize; norms, and the modules mlx-lm's model leaves or sets apart, "
                + "as mlx-lm has them.",
            valueName: "affine:bits[:group]|mxfp4|mxfp8|nvfp4"))
    var quantize: MLXQuantization.Parameters?

    @Option(
        help: ArgumentHelp(
            "HDF5 output: none (contiguous datasets, the default) or gzip[:LEVEL] (chunked deflate).",
            valueName: "none|gzip[:level]"))
    var hdf5Compression: HDF5Compression = .none

    @Flag(help: "Do not verify a .moeckpt input's checksums and padding while copying (they are by default).")
    var noCheck = false

    @Flag(name: [.short, .long], help: "No progress bar and no summary line.")
    var quiet = false

    @Option(
        help: ArgumentHelp(
            "With IN and OUT (a directory): write the plan of one job per output shard here. With --job or --finish: the plan to follow.",
            valueName: "plan.json"), completion: .file())
    var plan: String?

    @Option(
        help: ArgumentHelp(
            "Run one job of --plan: its index, or auto (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, PMIX_RANK or OMPI_COMM_WORLD_RANK).",
            valueName: "k|auto"))
    var job: JobIndex?

    @Flag(help: "Check that every job of --plan finished and write the index, description and sidecars.")
    var finish = false

    var options: ConvertOptions {
        ConvertOptions(
            dtype: dtype.flatMap { if case .float(let d) = $0 { d } else { nil } },
            blocks: dtype.flatMap { if case .blocks(let t) = $0 { t } else { nil } },
            maxShardBytes: maxShardSize?.bytes, names: names, mlxQuantization: quantize, hdf5Compression: hdf5Compression,
            checkIntegrity: !noCheck,
            progress: !quiet && TerminalProgressBar.stderrIsTerminal ? TerminalProgressBar() : nil)
    }

    func validate() throws {
        if job != nil || finish {
            guard plan != nil else { throw ValidationError("--job and --finish follow a plan: give --plan plan.json") }
            guard input == nil, output == nil else { throw ValidationError("--job and --finish take no IN or OUT: the plan has them") }
            guard !(job != nil && finish) else { throw ValidationError("--job and --finish are separate steps") }
            return
        }
        guard input != nil, let output else { throw ValidationError("convert needs IN and OUT") }
        do { _ = try OutputPlan(destination: output, options: options) } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        if let planPath = plan, let job {
            guard let index = job.index ?? ConvertJobs.jobIndexFromEnvironment() else {
                throw ValidationError(
                    "--job auto: none of SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, PMIX_RANK, OMPI_COMM_WORLD_RANK is set")
            }
            let done = try ConvertJobs.runJob(index, plan: planPath)
            if !quiet { print("job \(index): wrote \(done.file): \(done.tensors.count) tensors, \(ByteSize.describe(done.bytes))") }
            return
        }
        if let planPath = plan, finish {
            report(try ConvertJobs.finish(plan: planPath))
            return
        }
        let (input, output) = (self.input!, self.output!)  // validate() requires them here
        let options = self.options
        let plan = try OutputPlan(destination: output, options: options)
        if let planPath = self.plan {
            let written = try ConvertJobs.plan(input, plan: plan, checkIntegrity: options.checkIntegrity, to: planPath)
            if !quiet { print("wrote \(planPath): \(written.jobs.count) jobs (0 to \(written.jobs.count - 1)) writing \(written.output)") }
            return
        }
        report(try Converter.convert(input, plan: plan, checkIntegrity: options.checkIntegrity, progress: options.progress))
    }

    func report(_ result: ConvertResult) {
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

/// `convert --job`: an index, or auto (the scheduler's environment).
struct JobIndex: ExpressibleByArgument {
    let index: Int?

    init?(argument: String) {
        if argument == "auto" {
            index = nil
        } else if let value = Int(argument), value >= 0 {
            index = value
        } else {
            return nil
        }
    }
}
