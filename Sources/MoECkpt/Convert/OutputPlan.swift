/// What `moeckpt convert` writes, decided from the destination and the options alone, before any
/// input is read (the CLI's `validate()` makes the same plan, so a usage error is reported before
/// work starts).
public struct OutputPlan: Sendable, Equatable {
    /// The kinds of output.
    public enum Container: Sendable, Equatable {
        /// One safetensors file (a path ending in `.safetensors`).
        case safetensorsFile
        /// A directory of `<stem>.safetensors`, or shards and their index, with the model's
        /// description beside them (any other path, or `--names`, or `--max-shard-size`).
        case safetensorsDirectory(maxShardBytes: Int?)
        /// One HDF5 file (`.h5`, `.hdf5`).
        case hdf5(HDF5Compression)
        /// One `.moeckpt` file, canonical names and the model description in its header.
        case native
        /// One GGUF file (`.gguf`): llama.cpp's names and key/values; with a size, parts of at
        /// most that many bytes of tensors, `NAME-0000i-of-0000N.gguf` beside it.
        case gguf(maxShardBytes: Int?)

        var isGGUF: Bool {
            if case .gguf = self { return true }
            return false
        }
    }

    public let destination: String
    public let container: Container
    /// The layout asked for (`--names`).
    public let names: LayoutKey?
    /// Float tensors cast to this dtype.
    public let dtype: DType?
    /// Weights quantized into these ggml blocks (GGUF output only).
    public let blocks: GGMLType?
    /// Weights quantized as mlx-lm quantizes them (`--names mlx` output only).
    public let mlxQuantization: MLXQuantization.Parameters?

    public init(destination: String, options: ConvertOptions) throws(OutputPlanError) {
        self.destination = destination
        names = options.names
        dtype = options.dtype
        blocks = options.blocks
        mlxQuantization = options.mlxQuantization
        if options.mlxQuantization != nil, options.names != "mlx" { throw .quantizeNeedsMLXNames }
        if let blocks = options.blocks {
            guard blocks.isQuantizable else { throw .notQuantizable(blocks.name) }
            guard destination.hasSuffix(".gguf") else { throw .blocksNeedGGUF(blocks.name) }
        }
        let isHDF5 = destination.hasSuffix(".h5") || destination.hasSuffix(".hdf5")
        if let dtype = options.dtype, !Cast.targets.contains(dtype) { throw .notACastTarget(dtype) }
        if let names = options.names, ArchitectureRegistry.standard.layout(names) == nil { throw .unknownLayout(names) }
        if destination.hasSuffix(".gguf") {
            if let names = options.names, names != "gguf" { throw .ggufHasGGUFNames(names) }
            container = .gguf(maxShardBytes: options.maxShardBytes)
        } else if destination.hasSuffix(".moeckpt") {
            if options.names != nil { throw .namesNotForNative }
            if options.maxShardBytes != nil { throw .nativeIsOneFile }
            container = .native
        } else if isHDF5 {
            if options.maxShardBytes != nil || options.names != nil { throw .hdf5IsOneFile }
            container = .hdf5(options.hdf5Compression)
        } else if destination.hasSuffix(".safetensors") && options.names != nil {
            throw .namesNeedDirectory
        } else if destination.hasSuffix(".safetensors") && options.maxShardBytes == nil {
            container = .safetensorsFile
        } else {
            container = .safetensorsDirectory(maxShardBytes: options.maxShardBytes)
        }
    }

    /// Whether the output is a directory.
    public var isDirectory: Bool {
        if case .safetensorsDirectory = container { return true }
        return false
    }
}

/// Options that cannot go together, or with this destination.
public enum OutputPlanError: Error, CustomStringConvertible, Equatable, Sendable {
    case notACastTarget(DType)
    case unknownLayout(LayoutKey)
    case namesNeedDirectory
    case hdf5IsOneFile
    case namesNotForNative
    case nativeIsOneFile
    case ggufHasGGUFNames(LayoutKey)
    case blocksNeedGGUF(String)
    case notQuantizable(String)
    case quantizeNeedsMLXNames

    public var description: String {
        switch self {
        case .notACastTarget(let dtype): "--dtype must be f32, f16 or bf16, not '\(dtype.name)'"
        case .unknownLayout(let key):
            "--names must be one of \(ArchitectureRegistry.standard.layoutKeys.map(\.rawValue).joined(separator: ", ")), not '\(key)'"
        case .namesNeedDirectory: "with --names, OUT is a directory (the weights and their description file)"
        case .hdf5IsOneFile: "HDF5 output is one file: --max-shard-size and --names write safetensors directories"
        case .namesNotForNative: "a .moeckpt file always holds moeckpt's canonical names; --names applies to safetensors output"
        case .nativeIsOneFile: "a .moeckpt output is one file: --max-shard-size writes safetensors directories"
        case .ggufHasGGUFNames(let key): "a .gguf output holds llama.cpp's names (gguf), not '\(key)'"
        case .blocksNeedGGUF(let type): "--dtype \(type.lowercased()) writes ggml blocks: OUT must be a .gguf file"
        case .notQuantizable(let type): "moeckpt does not quantize into \(type) (it writes Q8_0 and Q4_0)"
        case .quantizeNeedsMLXNames:
            "--quantize writes mlx-lm's quantized format: give --names mlx and a directory OUT (--dtype q8_0/q4_0 quantize GGUF)"
        }
    }
}
