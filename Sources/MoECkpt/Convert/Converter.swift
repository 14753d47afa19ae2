#if canImport(Glibc)
import Glibc
#endif

/// What `moeckpt convert` should produce.
public struct ConvertOptions {
    /// Cast float tensors to this dtype (integer, bool and complex tensors are copied unchanged).
    public var dtype: DType?
    /// Quantize a GGUF output's weights into these ggml blocks (Q8_0, Q4_0).
    public var blocks: GGMLType?
    /// Split the output into shards of at most this many bytes.
    public var maxShardBytes: Int?
    /// Rewrite tensor names into this layout, with its description file.
    public var names: LayoutKey?
    /// Quantize the weights as mlx-lm does (`--names mlx` output only).
    public var mlxQuantization: MLXQuantization.Parameters?
    /// How HDF5 output stores its datasets.
    public var hdf5Compression: HDF5Compression
    /// Verify the input's stored checksums (a `.moeckpt` file's) and padding as its tensors are copied.
    public var checkIntegrity: Bool
    public var progress: ProgressReporter?

    public init(
        dtype: DType? = nil, blocks: GGMLType? = nil, maxShardBytes: Int? = nil, names: LayoutKey? = nil,
        mlxQuantization: MLXQuantization.Parameters? = nil, hdf5Compression: HDF5Compression = .none, checkIntegrity: Bool = true,
        progress: ProgressReporter? = nil
    ) {
        self.mlxQuantization = mlxQuantization
        self.blocks = blocks
        self.checkIntegrity = checkIntegrity
        self.dtype = dtype
        self.maxShardBytes = maxShardBytes
        self.names = names
        self.hdf5Compression = hdf5Compression
        self.progress = progress
    }
}

/// What a conversion wrote.
public struct ConvertResult: Sendable {
    public let output: String
    public let files: [String]
    public let tensors: Int
    public let bytes: Int
    /// Float tensors left in their dtype because they cannot be cast element-wise (F4, F6).
    public let uncastable: [String]
    /// Optional tensor groups of the model the output layout has no names for, left out.
    public let leftOut: [String]
    /// What the output lacks that its readers may expect (a GGUF without a tokenizer).
    public let notes: [String]
}

/// What a conversion writes, worked out once from the input and the plan: the tensors under
/// their output names, the metadata, and the description that goes with them.
struct ConversionSource {
    var tensors: [NamedTensor]
    var metadata: [String: String]
    /// Files written beside the weights of a directory output: a layout's description file (nil
    /// when it went into the metadata), or the input's sidecars copied as they are.
    var sidecars: Sidecars = .copied(Converter.sidecarFiles)
    /// The stem of the data files of a directory output.
    var fileStem = "model"
    /// The header's model description, for `.moeckpt` output.
    var native = MoeckptWriter.Description()
    /// Optional tensor groups the output layout cannot name (`ConvertResult.leftOut`).
    var leftOut: [String] = []
    /// A GGUF output's key/values.
    var ggufKeyValues: [(key: String, value: GGUFValue)] = []
    /// `ConvertResult.notes`.
    var notes: [String] = []
    /// Files made for a directory output (a GGUF input's tokenizer as tokenizer.json).
    var madeFiles: [(name: String, text: String)] = []

    enum Sidecars {
        case description(DescriptionFile, text: String?)
        case copied([String])
    }
}

public enum Converter {
    /// Sidecar files of a model directory carried over to a directory output.
    static let sidecarFiles = ["config.json", "generation_config.json", "params.json"] + HuggingFaceTokenizerFiles.names
    static let copyChunkBytes = 16 << 20
    static let castChunkElements = 1 << 20

    /// Converts the checkpoint at `inputPath` into `outputPath` (see `OutputPlan` for what each
    /// destination becomes). The output appears only when complete.
    public static func convert(
        _ inputPath: String, to outputPath: String,
        options: ConvertOptions = ConvertOptions()
    ) throws(FileError) -> ConvertResult {
        let plan: OutputPlan
        do { plan = try OutputPlan(destination: outputPath, options: options) } catch {
            throw FileError(path: outputPath, problem: error)
        }
        return try convert(inputPath, plan: plan, checkIntegrity: options.checkIntegrity, progress: options.progress)
    }

    /// Opens the input once, works out what to write once, and writes it with the plan's writer.
    public static func convert(
        _ inputPath: String, plan: OutputPlan, checkIntegrity: Bool = true,
        progress: ProgressReporter? = nil
    ) throws(FileError) -> ConvertResult {
        let input = try ModelDirectory.open(inputPath)
        try refuseOverwritingInput(input, inputPath: inputPath, outputPath: plan.destination)
        try refuseWritingIntoShards(input, outputPath: plan.destination)
        let source = try self.source(input, named: inputPath, plan: plan)

        let (tensors, uncastable) = try tensorsToWrite(
            input, source, plan: plan, checkIntegrity: checkIntegrity, progress: progress)
        let tensorBytes = tensors.reduce(0) { $0 + $1.byteCount }
        progress?.start(totalBytes: tensorBytes)
        defer { progress?.finish() }

        if case .gguf(let maxShardBytes?) = plan.container {
            let parts = ShardPlanner.plan(tensors, maxBytes: maxShardBytes)
            if parts.count > 1 {
                let files = try writeSplitGGUF(parts, source, destination: plan.destination)
                return ConvertResult(
                    output: plan.destination, files: files, tensors: tensors.count, bytes: tensorBytes, uncastable: uncastable,
                    leftOut: source.leftOut, notes: source.notes)
            }
        }
        let output = try AtomicOutput(destination: plan.destination, isDirectory: plan.isDirectory)
        do {
            let files: [String]
            var bytes = tensorBytes
            switch plan.container {
            case .native:
                files = try writeNative(tensors, source, to: output)
            case .gguf:
                files = try writeGGUF(tensors, source, to: output)
            case .hdf5(let compression):
                files = try writeHDF5(tensors, source, compression: compression, to: output)
            case .safetensorsFile:
                (files, bytes) = try writeSafetensors(tensors, source, to: output)
            case .safetensorsDirectory(let maxShardBytes):
                (files, bytes) = try writeDirectory(tensors, source, maxShardBytes: maxShardBytes, input: input, to: output)
            }
            try output.commit()
            return ConvertResult(
                output: plan.destination, files: files, tensors: tensors.count, bytes: bytes, uncastable: uncastable,
                leftOut: source.leftOut, notes: source.notes)
        } catch {
            // Name the destination, not the temporary file.
            guard error.path.hasPrefix(output.temporaryPath) else { throw error }
            throw FileError(path: plan.destination + error.path.dropFirst(output.temporaryPath.count), problem: error.problem)
        }
    }

    /// The tensors of `source` as the output stores them: copied, cast, quantized, or a GGUF
    /// input's blocks as they are; and the float tensors that could not be cast.
    static func tensorsToWrite(
        _ input: Checkpoint, _ source: ConversionSource, plan: OutputPlan, checkIntegrity: Bool, progress: ProgressReporter?
    ) throws(FileError) -> (tensors: [TensorToWrite], uncastable: [String]) {
        var uncastable: [String] = []
        let integrity = checkIntegrity ? try input.checksumVerifier() : nil
        let blockTensors = Dictionary(
            input.tensors.filter { $0.blocks != nil }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let tensors = source.tensors.map { tensor -> TensorToWrite in
            // A GGUF input's blocks go to a GGUF output as they are, unless asked to change.
            if plan.container.isGGUF, plan.dtype == nil, let stored = blockTensors[tensor.name],
                let blocks = stored.blocks, plan.blocks == nil || plan.blocks == blocks.type, stored.shape == tensor.shape
            {
                let raw = NamedTensor(name: tensor.name, dtype: .u8, shape: tensor.shape, rope: blocks.rope)
                return copying(raw, blocks: blocks.type, integrity: integrity, progress: progress)
            }
            let keptF32 = plan.container.isGGUF && GGUFWriter.staysF32(tensor.name, shape: tensor.shape)
            if let blocks = plan.blocks, !keptF32, tensor.dtype.isFloatingPoint, tensor.dtype.byteWidth != nil,
                (tensor.shape.last ?? 0) % blocks.blockSize == 0
            {
                return quantizing(tensor, to: blocks, integrity: integrity, progress: progress)
            }
            guard let target = keptF32 ? .f32 : plan.dtype, tensor.dtype.isFloatingPoint, tensor.dtype != target else {
                return copying(tensor, integrity: integrity, progress: progress)
            }
            guard Cast.canCast(from: tensor.dtype, to: target) else {
                uncastable.append(tensor.name)
                return copying(tensor, integrity: integrity, progress: progress)
            }
            return casting(tensor, to: target, integrity: integrity, progress: progress)
        }
        return (tensors, uncastable)
    }

    /// The tensors, names, metadata and description to write. A `.moeckpt` output holds the
    /// canonical model (when the input has a description); `--names` exports to a layout; a
    /// `.moeckpt` input written from a canonical model goes back to the layout it came from.
    static func source(_ input: Checkpoint, named inputPath: String, plan: OutputPlan) throws(FileError) -> ConversionSource {
        // A GGUF file's metadata is its key/values: they describe that file, and go only to GGUF.
        let carried = input.format == .gguf && !plan.container.isGGUF ? [:] : input.metadata
        var source = ConversionSource(tensors: ModelLoader.stored(input), metadata: carried)
        let inputLayout = input.embedded?.layout.map(LayoutKey.init(rawValue:))
        let inputSourceLayout = input.embedded?.sourceLayout.map(LayoutKey.init(rawValue:))
        if plan.container == .native {
            if let model = try ModelLoader.standard.loadIfDescribed(input) {
                source.tensors = model.tensors
                let sourceLayout = model.layout.key == .canonical ? inputSourceLayout : model.layout.key
                source.native = MoeckptWriter.Description(
                    model: model.architecture.configJSON, layout: LayoutKey.canonical.rawValue,
                    sourceLayout: sourceLayout?.rawValue)
            }
        } else if let key = plan.container.isGGUF ? "gguf" : plan.names ?? (inputLayout == .canonical ? inputSourceLayout : nil) {
            let model = try ModelLoader.standard.load(input)
            guard let layout = model.architecture.layouts.first(where: { $0.key == key }) else {
                throw FileError(
                    path: inputPath,
                    problem: ModelLoadError.layoutNotForArchitecture(
                        layout: key, modelType: model.architecture.modelType))
            }
            let lost = model.architecture.unexpressible(in: key)
            guard lost.isEmpty else {
                throw FileError(
                    path: inputPath,
                    problem: ModelLoadError.layoutCannotExpress(layout: key, modelType: model.architecture.modelType, lost: lost))
            }
            do throws(ModelLoadError) {
                var canonical = model.tensors
                if layout.writesTiedHead, !canonical.contains(where: { $0.name == "lm_head" }),
                    let embed = canonical.first(where: { $0.name == "embed" })
                {
                    canonical.append(NamedTensor(name: "lm_head", dtype: embed.dtype, shape: embed.shape, rope: embed.rope))
                }
                let (tensors, leftOut) = LayoutMapper.withoutUnnamedGroups(
                    canonical, architecture: model.architecture, layout: layout)
                source.tensors = try LayoutMapper.export(tensors, architecture: model.architecture, layout: layout)
                var seen = Set<String>()
                source.leftOut = leftOut.map(\.title).filter { seen.insert($0).inserted }.map {
                    "\($0) (the \(key) layout has no names for it)"
                }
            } catch {
                throw FileError(path: inputPath, problem: error)
            }
            var quantization: MLXQuantization?
            if let parameters = plan.mlxQuantization {
                let rules = type(of: model.architecture).mlxQuantizationRules
                let (modules, planned) = rules.plan(source.tensors, defaults: parameters)
                source.tensors = MLXQuantizedWeights.quantized(source.tensors, modules: modules, dtype: plan.dtype)
                quantization = planned
            }
            source.metadata = source.metadata.filter { !ArchitectureRegistry.standard.isDescriptionKey($0.key) }
            if plan.container.isGGUF {
                let weights =
                    plan.blocks ?? plan.dtype.flatMap(GGMLType.init)
                    ?? source.tensors.first { !GGUFWriter.staysF32($0.name, shape: $0.shape) }.flatMap { GGMLType($0.dtype) }
                (source.ggufKeyValues, source.notes) = try ggufKeyValues(
                    input, model, layout: layout, weights: weights, inputPath: inputPath)
                // A GGUF input's tensor order; else blocks in numeric order.
                let position = Dictionary(input.tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
                source.tensors.sort {
                    guard input.gguf != nil, let a = position[$0.name], let b = position[$1.name] else {
                        return naturalOrder($0.name, $1.name)
                    }
                    return a < b
                }
            }
            if plan.isDirectory, let gguf = input.gguf {
                do throws(GGUFVocabularyError) {
                    if let vocabulary = try GGUFVocabulary(keyValues: gguf.keyValues) {
                        source.madeFiles = vocabulary.huggingFaceFiles
                    } else {
                        source.notes.append("no tokenizer is carried: the GGUF file has none")
                    }
                } catch {
                    source.notes.append("no tokenizer is carried: \(error)")
                }
            }
            if plan.isDirectory {
                switch model.architecture.description(layout.description) {
                case .text(let text)?: source.sidecars = .description(layout.description, text: text)
                case .metadata(let keys)?:
                    source.metadata.merge(keys) { _, new in new }
                    source.sidecars = .description(layout.description, text: nil)
                case nil:
                    let dtype = plan.dtype ?? (input.format == .gguf ? ConfigFile.bulkDType(source.tensors) : nil)
                    let text = ConfigFile.text(
                        source: try ConfigFile.source(of: input), described: model.architecture.configJSON, layout: layout, dtype: dtype,
                        quantization: quantization)
                    source.sidecars = .description(.configJSON, text: text)
                }
            }
            source.fileStem = layout.fileStem
        }
        // A single file keeps no description file: say so, and how to give it back.
        if !plan.isDirectory, plan.container != .native, !plan.container.isGGUF,
            !source.metadata.keys.contains(where: ArchitectureRegistry.standard.isDescriptionKey),
            case .file(let path)? = try? ModelLoader.standard.describeIfDescribed(input)?.source
        {
            source.notes.append(
                "the output holds no model description (\(path) stays with the input): give it to verify, run or inspect with --config \(path)"
            )
        }
        // Copied as it is, the input's config.json would give the old dtype.
        if case .copied = source.sidecars, plan.isDirectory, let dtype = plan.dtype, let config = try ConfigFile.source(of: input) {
            source.madeFiles.append((ConfigFile.name, ConfigFile.text(source: config, dtype: dtype)))
        }
        switch plan.container {
        case .safetensorsFile, .safetensorsDirectory:
            if source.metadata["format"] == nil { source.metadata["format"] = "pt" }  // transformers requires it
        case .hdf5, .native, .gguf: break
        }
        return source
    }

    static func writeGGUF(_ tensors: [TensorToWrite], _ source: ConversionSource, to output: AtomicOutput) throws(FileError) -> [String] {
        let file = try OutputFile(creating: output.temporaryPath)
        try GGUFWriter.write(tensors, keyValues: source.ggufKeyValues, to: file)
        try file.close()
        return [output.destination]
    }

    /// Parts `NAME-0000i-of-0000N.gguf` beside `destination` (`NAME.gguf`), as `gguf-split` and
    /// the gguf package write them: the first holds every key/value, each its `split.*` keys;
    /// all appear only when all are written.
    static func writeSplitGGUF(_ parts: [[TensorToWrite]], _ source: ConversionSource, destination: String) throws(FileError) -> [String] {
        let stem = String(destination.dropLast(".gguf".count))
        let total = parts.reduce(0) { $0 + $1.count }
        // split.count is a u16 and part names have five digits.
        guard parts.count <= 65_535, total <= Int(Int32.max) else {
            throw FileError(path: destination, problem: GGUFError.splitName(count: parts.count))
        }
        var outputs: [AtomicOutput] = []
        for index in parts.indices {
            outputs.append(
                try AtomicOutput(destination: GGUFFile.splitPartName(stem: stem, index: index, count: parts.count), isDirectory: false))
        }
        for (index, part) in parts.enumerated() {
            let split: [(key: String, value: GGUFValue)] = [
                ("split.no", .uint16(UInt16(index))), ("split.count", .uint16(UInt16(parts.count))),
                ("split.tensors.count", .int32(Int32(total))),
            ]
            let file = try OutputFile(creating: outputs[index].temporaryPath)
            try GGUFWriter.write(part, keyValues: (index == 0 ? source.ggufKeyValues : []) + split, to: file)
            try file.close()
        }
        for output in outputs { try output.commit() }
        return outputs.map(\.destination)
    }

    /// A GGUF input's own key/values, tokenizer and all, in their order; otherwise the model's
    /// llama.cpp keys, typed as gguf-py types them, and the tokenizer beside the model. With notes
    /// on what the output lacks.
    static func ggufKeyValues(
        _ input: Checkpoint, _ model: LoadedModel, layout: NamingLayout, weights: GGMLType?, inputPath: String
    ) throws(FileError) -> ([(key: String, value: GGUFValue)], notes: [String]) {
        // A split input's parts are one file here: its split.* keys do not apply.
        if let gguf = input.gguf {
            let keyValues = gguf.keyValues.filter { !$0.key.hasPrefix("split.") }
            let vocabularyLess = keyValues.contains { $0.key == "tokenizer.ggml.model" && $0.value == .string("none") }
            return (keyValues, vocabularyLess ? [noTokenizerNote("tokenizer.ggml.model is none")] : [])
        }
        guard case .metadata(let keys)? = model.architecture.description(layout.description) else {
            throw FileError(
                path: inputPath, problem: ModelLoadError.layoutNotForArchitecture(layout: "gguf", modelType: model.architecture.modelType))
        }
        let modelKeyValues: [(key: String, value: GGUFValue)]
        do throws(GGUFKeyTypes.UnknownKey) {
            let described = try GGUFKeyTypes.keyValues(keys)
            modelKeyValues = described.prefix(1) + GGUFKeyTypes.generalKeyValues(weights: weights) + described.dropFirst()
        } catch {
            throw FileError(path: inputPath, problem: error)
        }
        let directory = ModelDirectory.of(input)
        guard let files = try HuggingFaceTokenizerFiles.read(directory: directory) else {
            // llama.cpp's vocabulary-less form: it still evaluates token ids.
            return (modelKeyValues + [("tokenizer.ggml.model", .string("none"))], [noTokenizerNote("no tokenizer.json beside the model")])
        }
        do throws(TokenizerImportError) {
            let rule = GGUFVocabulary.ConverterRule(architecture: keys["general.architecture"] ?? "")
            let vocabulary = try GGUFVocabulary(huggingFace: files, rule: rule)
            return (modelKeyValues + vocabulary.keyValues, [])
        } catch {
            let path = FileSystem.join(directory, "tokenizer.json")
            return (modelKeyValues + [("tokenizer.ggml.model", .string("none"))], [noTokenizerNote("\(path): \(error)")])
        }
    }

    static func noTokenizerNote(_ reason: String) -> String {
        "no tokenizer is carried (\(reason)): llama.cpp evaluates token ids, but cannot read or write text"
    }

    static func writeNative(_ tensors: [TensorToWrite], _ source: ConversionSource, to output: AtomicOutput) throws(FileError) -> [String] {
        let file = try OutputFile(creating: output.temporaryPath)
        try MoeckptWriter.write(tensors, metadata: source.metadata, description: source.native, to: file)
        try file.close()
        return [output.destination]
    }

    static func writeHDF5(
        _ tensors: [TensorToWrite], _ source: ConversionSource, compression: HDF5Compression,
        to output: AtomicOutput
    ) throws(FileError) -> [String] {
        try HDF5Writer.write(
            tensors.sorted { naturalOrder($0.name, $1.name) }, metadata: source.metadata,
            to: output.temporaryPath, compression: compression)
        return [output.destination]
    }

    /// Returns the file and its bytes (header included).
    static func writeSafetensors(
        _ tensors: [TensorToWrite], _ source: ConversionSource,
        to output: AtomicOutput
    ) throws(FileError) -> ([String], Int) {
        let file = try OutputFile(creating: output.temporaryPath)
        let bytes = try SafetensorsWriter.write(tensors, metadata: source.metadata, to: file)
        try file.close()
        return ([output.destination], bytes)
    }

    /// Shards (one file when they fit), their index, and the description or the input's sidecars.
    static func writeDirectory(
        _ tensors: [TensorToWrite], _ source: ConversionSource, maxShardBytes: Int?, input: Checkpoint,
        to output: AtomicOutput
    ) throws(FileError) -> ([String], Int) {
        let shards = directoryShards(tensors, fileStem: source.fileStem, maxShardBytes: maxShardBytes)
        var bytes = 0
        for shard in shards {
            let file = try OutputFile(creating: output.path(of: shard.file))
            bytes += try SafetensorsWriter.write(shard.tensors, metadata: source.metadata, to: file)
            try file.close()
        }
        try writeBesideShards(shards, dataBytes: bytes, source, input: input, path: output.path(of:))
        return (shards.map { FileSystem.join(output.destination, $0.file) }, bytes)
    }

    /// A directory output's shards: their file names and tensors, in natural order of names.
    static func directoryShards(
        _ tensors: [TensorToWrite], fileStem: String, maxShardBytes: Int?
    ) -> [(file: String, tensors: [TensorToWrite])] {
        let shards = ShardPlanner.plan(tensors.sorted { naturalOrder($0.name, $1.name) }, maxBytes: maxShardBytes ?? Int.max)
        return shards.enumerated().map { (ShardPlanner.fileName(stem: fileStem, $0.offset, of: shards.count), $0.element) }
    }

    /// What a directory output holds beside its shards, at `path(of: name)`: the index (more than
    /// one shard), the description or the input's sidecars, and the files made for the output.
    static func writeBesideShards(
        _ shards: [(file: String, tensors: [TensorToWrite])], dataBytes: Int, _ source: ConversionSource, input: Checkpoint,
        path: (String) -> String
    ) throws(FileError) {
        if shards.count > 1 {
            let weightMap = Dictionary(uniqueKeysWithValues: shards.flatMap { shard in shard.tensors.map { ($0.name, shard.file) } })
            let parameters = shards.reduce(0) { $0 + $1.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) } }
            let index = ShardPlanner.indexJSON(weightMap: weightMap, totalParameters: parameters, totalSize: dataBytes)
            try writeSmallFile(path(source.fileStem + ".safetensors.index.json"), Array(index.utf8))
        }
        // Files made for the output take the place of the input's.
        let made = Set(source.madeFiles.map(\.name))
        switch source.sidecars {
        case .description(let file, let text):
            if let text { try writeSmallFile(path(file.rawValue), Array(text.utf8)) }
            let generation = file == .configJSON ? ["generation_config.json"] : []
            // A GGUF input's tokenizer is its own (`madeFiles`), not the files beside it.
            let tokenizer = input.gguf == nil ? HuggingFaceTokenizerFiles.names : []
            try copySidecars(from: input, only: (generation + tokenizer).filter { !made.contains($0) }, to: path)
        case .copied(let names):
            try copySidecars(from: input, only: names.filter { !made.contains($0) }, to: path)
        }
        for (name, text) in source.madeFiles { try writeSmallFile(path(name), Array(text.utf8)) }
    }

    static func refuseOverwritingInput(_ input: Checkpoint, inputPath: String, outputPath: String) throws(FileError) {
        guard let target = FileSystem.realPath(outputPath) else { return }
        var protected = Set(input.files.compactMap(FileSystem.realPath))
        if let root = FileSystem.realPath(inputPath) { protected.insert(root) }
        for file in input.files { if let dir = FileSystem.realPath(FileSystem.directoryName(file)) { protected.insert(dir) } }
        if protected.contains(target) { throw FileError(path: outputPath, problem: OutputError.destinationIsInput) }
    }

    /// A sharded input's directory is part of the input: writing into it would change what the
    /// next reader of that directory finds.
    static func refuseWritingIntoShards(_ input: Checkpoint, outputPath: String) throws(FileError) {
        guard input.files.count > 1 || input.format == .shardedSafetensors,
            let shardDirectory = input.files.first.flatMap({ FileSystem.realPath(FileSystem.directoryName($0)) }),
            let outputParent = FileSystem.realPath(FileSystem.directoryName(outputPath))
        else { return }
        if outputParent == shardDirectory || outputParent.hasPrefix(shardDirectory + "/") {
            throw FileError(path: outputPath, problem: OutputError.insideShardDirectory(shardDirectory))
        }
    }

    static func copySidecars(from input: Checkpoint, only names: [String], to target: (String) -> String) throws(FileError) {
        guard let first = input.files.first else { return }
        let directory = FileSystem.directoryName(first)
        for name in names {
            let path = FileSystem.join(directory, name)
            guard FileSystem.exists(path) else { continue }
            let mapping = try FileMapping(path: path, maximumBytes: HuggingFaceTokenizerFiles.maximumBytes)
            try writeSmallFile(target(name), Array(mapping.bytes))
        }
    }

    static func writeSmallFile(_ path: String, _ bytes: [UInt8]) throws(FileError) {
        let file = try OutputFile(creating: path)
        try file.write(bytes)
        try file.close()
    }
}
