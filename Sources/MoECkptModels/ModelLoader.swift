import MoECkptFormats
import MoECkptTensors

/// A model directory's conventions: description files beside the weights, and reference outputs
/// (`moeckpt verify`'s `expected.safetensors`), which are never taken for the weights.
public enum ModelDirectory {
    public static let expectedOutputsName = "expected.safetensors"
    public static let locator = CheckpointLocator(notWeights: [expectedOutputsName])

    /// Opens a checkpoint (file, index.json or model directory).
    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        try Checkpoint.open(path, locator: locator)
    }

    /// The directory a checkpoint's data files are in.
    public static func of(_ checkpoint: Checkpoint) -> String {
        FileSystem.directoryName(checkpoint.files.first ?? checkpoint.path)
    }
}

/// Where a model description came from.
public enum DescriptionSource: Sendable, Equatable {
    /// config.json or params.json beside the weights (its path).
    case file(String)
    /// The description embedded in a `.moeckpt` header.
    case embedded
    /// llama.cpp's keys in the safetensors metadata.
    case ggufMetadata
    /// A GGUF file's own key/values.
    case ggufKeyValues

    /// How reports name it: the file's name, or where in the checkpoint it is.
    public var name: String {
        switch self {
        case .file(let path): FileSystem.baseName(path)
        case .embedded: "the .moeckpt header"
        case .ggufMetadata: "__metadata__ (GGUF keys)"
        case .ggufKeyValues: "the GGUF key/values"
        }
    }
}

/// A checkpoint loaded as a canonical model.
public struct LoadedModel: Sendable {
    public let architecture: any Architecture
    public let descriptionSource: DescriptionSource
    public let layout: NamingLayout
    /// The canonical tensors, in the architecture's order.
    public let tensors: [CanonicalTensor]
    public let checkpoint: Checkpoint
    /// Canonical weights also held block-quantized, for the kernels (`Architecture.quantizedWeights`).
    public let quantized: [String: QuantizedWeight]

    public init(
        architecture: any Architecture, descriptionSource: DescriptionSource, layout: NamingLayout, tensors: [CanonicalTensor],
        checkpoint: Checkpoint, quantized: [String: QuantizedWeight] = [:]
    ) {
        self.architecture = architecture
        self.descriptionSource = descriptionSource
        self.layout = layout
        self.tensors = tensors
        self.checkpoint = checkpoint
        self.quantized = quantized
    }

    public func tensor(_ name: String) -> CanonicalTensor? { tensors.first { $0.name == name } }
}

/// A checkpoint's description: its architecture and where that came from.
public struct ModelDescription: Sendable {
    public let architecture: any Architecture
    public let source: DescriptionSource
    /// mlx-lm's quantization of the weights, when config.json has one.
    public var mlxQuantization: MLXQuantization? = nil

    /// From a config.json object: its architecture and its quantization.
    init(configJSON object: JSONObject, source: DescriptionSource, registry: ArchitectureRegistry) throws(ModelConfigError) {
        architecture = try registry.read(configJSON: object)
        self.source = source
        mlxQuantization = try MLXQuantization.read(object)
    }

    init(architecture: any Architecture, source: DescriptionSource) {
        self.architecture = architecture
        self.source = source
    }
}

/// Finds a checkpoint's model description, recognises its naming layout and loads it canonically,
/// as one of the architectures of a registry.
public struct ModelLoader: Sendable {
    public let registry: ArchitectureRegistry
    /// A description file given by the user (`--config`: a config.json, or Mistral's params.json),
    /// read in place of any the checkpoint has: for a single-file checkpoint written without one.
    public var descriptionFile: String?

    public init(registry: ArchitectureRegistry, descriptionFile: String? = nil) {
        self.registry = registry
        self.descriptionFile = descriptionFile
    }

    /// The user's description file, the description embedded in the checkpoint, or the description
    /// file beside its data files, or llama.cpp's keys in its metadata; nil when it has none.
    public func describeIfDescribed(_ checkpoint: Checkpoint) throws(FileError) -> ModelDescription? {
        if let path = descriptionFile {
            do {
                let object = try Self.readObject(path)
                // params.json has no model_type; config.json always does.
                if object["model_type"] == nil, let architecture = try registry.read(.mistralParams(object)) {
                    return ModelDescription(architecture: architecture, source: .file(path))
                }
                return try ModelDescription(configJSON: object, source: .file(path), registry: registry)
            } catch {
                throw FileError(path: path, problem: error)
            }
        }
        if let model = checkpoint.embedded?.description {
            do {
                return try ModelDescription(configJSON: model, source: .embedded, registry: registry)
            } catch {
                throw FileError(path: checkpoint.path, problem: error)
            }
        }
        let directory = ModelDirectory.of(checkpoint)
        let configPath = FileSystem.join(directory, DescriptionFile.configJSON.rawValue)
        let paramsPath = FileSystem.join(directory, DescriptionFile.mistralParams.rawValue)
        do {
            if FileSystem.exists(configPath) {
                return try ModelDescription(configJSON: try Self.readObject(configPath), source: .file(configPath), registry: registry)
            }
            if FileSystem.exists(paramsPath),
                let architecture = try registry.read(.mistralParams(try Self.readObject(paramsPath)))
            {
                return ModelDescription(architecture: architecture, source: .file(paramsPath))
            }
        } catch {
            throw FileError(path: FileSystem.exists(configPath) ? configPath : paramsPath, problem: error)
        }
        do {
            var metadata = checkpoint.metadata
            // llama.cpp's converter writes `{arch}.vocab_size` for some architectures only (not
            // Qwen's); llama.cpp takes the size from the vocabulary, which is token_embd's rows.
            if let architecture = metadata["general.architecture"], metadata["\(architecture).vocab_size"] == nil,
                let rows = checkpoint.tensor(named: "token_embd.weight")?.shape.first
            {
                metadata["\(architecture).vocab_size"] = String(rows)
            }
            let keys = OtherDescription.ggufMetadata(metadata, hasOutputTensor: checkpoint.tensor(named: "output.weight") != nil)
            if let architecture = try registry.read(keys) {
                return ModelDescription(architecture: architecture, source: checkpoint.format == .gguf ? .ggufKeyValues : .ggufMetadata)
            }
        } catch {
            throw FileError(path: checkpoint.path, problem: error)
        }
        return nil
    }

    /// The description; a checkpoint without one is an error.
    public func describe(_ checkpoint: Checkpoint) throws(FileError) -> ModelDescription {
        guard let description = try describeIfDescribed(checkpoint) else {
            throw FileError(path: checkpoint.path, problem: ModelConfigError.noDescription)
        }
        return description
    }

    /// Why a description cannot be this checkpoint's, judged from counts alone before its tensors
    /// are listed (a config that plans 2^24 layers must be refused at once, not expanded): every
    /// canonical tensor is at least half a stored tensor (fused layouts store two in one), and
    /// its parameters need at least the bits of the narrowest dtype present. A description that
    /// misses by a little (a few tensors absent) passes, to be told apart tensor by tensor; the
    /// work of listing stays proportional to the checkpoint's size.
    public static func scaleProblem(_ description: ModelDescription, _ checkpoint: Checkpoint) -> String? {
        let architecture = description.architecture
        let storedBytes = checkpoint.tensors.reduce(0) { $0 &+ $1.byteCount }
        let quantizedBits = description.mlxQuantization.map { [$0.defaults.bits] + $0.overrides.values.compactMap { $0?.bits } } ?? []
        let narrowestBits = (checkpoint.tensors.map(\.dtype.bits) + quantizedBits).min() ?? 8
        guard let (tensors, parameters) = architecture.plannedScale else {
            return "the description's sizes overflow 64 bits"
        }
        if tensors / 2 > 4 * checkpoint.tensors.count + 1024 {
            return "the description plans \(tensors) tensors but the checkpoint holds \(checkpoint.tensors.count)"
        }
        let (bits, overflow) = parameters.multipliedReportingOverflow(by: narrowestBits)
        if overflow || bits / 8 > 4 * storedBytes + (1 << 20) {
            return "the description plans \(parameters) parameters, more than the checkpoint's \(storedBytes) bytes of tensors can hold"
        }
        return nil
    }

    /// config.json and params.json above this size are refused unread (real ones are a few KB).
    public static let descriptionLimitBytes = 16 << 20

    package static func readObject(_ path: String) throws(ModelConfigError) -> JSONObject {
        let mapping: FileMapping
        do { mapping = try FileMapping(path: path, maximumBytes: descriptionLimitBytes) } catch {
            throw .unreadable(error.problem.description)
        }
        return try ConfigFields.parse(mapping.bytes)
    }

    /// The checkpoint's tensors under their stored names, as the layout mapper takes them.
    public static func stored(_ checkpoint: Checkpoint) -> [NamedTensor] {
        checkpoint.tensors.map { NamedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, rope: $0.rope) }
    }

    /// Why the checkpoint does not load as its description in `layout` (empty when it does): the
    /// configuration's own problems, then the scale check or every tensor mismatch.
    public static func problems(_ checkpoint: Checkpoint, described description: ModelDescription, layout: NamingLayout) -> [String] {
        let architecture = description.architecture
        if let problem = scaleProblem(description, checkpoint) { return architecture.inconsistencies + [problem] }
        let (tensors, quantizationProblems) = weights(checkpoint, described: description)
        return architecture.inconsistencies + quantizationProblems
            + LayoutMapper.load(tensors, architecture: architecture, layout: layout).problems
    }

    /// The stored tensors as the architecture takes them: quantized weights dequantized (mlx-lm's
    /// by the description's quantization, then the family's own).
    public static func weights(
        _ checkpoint: Checkpoint, described description: ModelDescription
    ) -> (
        tensors: [NamedTensor], problems: [String]
    ) {
        var (tensors, problems) = (stored(checkpoint), [String]())
        if let quantization = description.mlxQuantization { (tensors, problems) = quantization.dequantize(tensors) }
        let prepared = description.architecture.prepare(tensors)
        return (prepared.tensors, problems + prepared.problems)
    }

    /// Opens and loads a checkpoint; every mismatch between the checkpoint and its description is
    /// reported in one error.
    public func load(_ path: String) throws(FileError) -> LoadedModel {
        try load(try ModelDirectory.open(path))
    }

    public func load(_ checkpoint: Checkpoint) throws(FileError) -> LoadedModel {
        try load(checkpoint, described: try describe(checkpoint))
    }

    /// The canonical model when the checkpoint has a description (its problems are errors), nil
    /// when it has none.
    public func loadIfDescribed(_ checkpoint: Checkpoint) throws(FileError) -> LoadedModel? {
        guard let description = try describeIfDescribed(checkpoint) else { return nil }
        return try load(checkpoint, described: description)
    }

    func load(_ checkpoint: Checkpoint, described description: ModelDescription) throws(FileError) -> LoadedModel {
        try load(checkpoint, described: description, lenient: false).model
    }

    /// A model that may lack tensors, hold unexpected ones, or hold some transposed or of another
    /// shape (`LayoutMapper.Deviations`); every other problem is an error. For comparing with
    /// another model, not for running.
    public func loadLeniently(_ path: String) throws(FileError) -> (model: LoadedModel, deviations: LayoutMapper.Deviations) {
        let checkpoint = try ModelDirectory.open(path)
        return try load(checkpoint, described: try describe(checkpoint), lenient: true)
    }

    func load(
        _ checkpoint: Checkpoint, described description: ModelDescription, lenient: Bool
    ) throws(FileError) -> (model: LoadedModel, deviations: LayoutMapper.Deviations) {
        let architecture = description.architecture
        if let problem = Self.scaleProblem(description, checkpoint) {
            throw FileError(path: checkpoint.path, problem: Self.loadError([problem], checkpoint, description))
        }
        let (stored, quantizationProblems) = Self.weights(checkpoint, described: description)
        let layout = NamingLayout.detect(stored.map(\.name), among: architecture.layouts) ?? architecture.layouts[0]
        let (tensors, mappingProblems, deviations) = LayoutMapper.load(
            stored, architecture: architecture, layout: layout, lenient: lenient)
        let problems = architecture.inconsistencies + quantizationProblems + mappingProblems
        guard problems.isEmpty else { throw FileError(path: checkpoint.path, problem: Self.loadError(problems, checkpoint, description)) }
        let quantized = architecture.quantizedWeights(Self.stored(checkpoint)).merging(
            Self.storedBlocks(checkpoint, architecture: architecture, layout: layout)
        ) { family, _ in family }
        let model = LoadedModel(
            architecture: architecture, descriptionSource: description.source, layout: layout, tensors: tensors,
            checkpoint: checkpoint, quantized: quantized)
        return (model, deviations)
    }

    /// The problems, with their cause when it is recognised.
    static func loadError(_ problems: [String], _ checkpoint: Checkpoint, _ description: ModelDescription) -> ModelLoadError {
        let cause = description.mlxQuantization == nil ? MLXQuantization.recognised(stored(checkpoint), description.architecture) : nil
        return cause.map { .causedBy($0, problems: problems) } ?? .problems(problems)
    }

    /// A GGUF file's blocks that the kernels read as they are (Q8_0, Q4_0, Q4_K, Q6_K, MXFP4), under the canonical
    /// names of the tensors they hold: tensors the layout takes whole, or with its query/key rows
    /// reordered (a row is whole blocks, so the rows move as they do in F32).
    static func storedBlocks(
        _ checkpoint: Checkpoint, architecture: any Architecture, layout: NamingLayout
    ) -> [String: QuantizedWeight] {
        var out: [String: QuantizedWeight] = [:]
        for tensor in checkpoint.tensors {
            guard let blocks = tensor.blocks, let rowElements = tensor.shape.last else { continue }
            let format: QuantizedWeight.Format
            switch blocks.type {
            case .q8_0: format = .q8_0
            case .mxfp4: format = .mxfp4
            case .q4_0: format = .q4_0
            case .q4_K: format = .q4_K
            case .q5_K: format = .q5_K
            case .q6_K: format = .q6_K
            default: continue
            }
            for entry in layout.entries where entry.canonical.count == 1 {
                guard let match = entry.stored.match(tensor.name) else { continue }
                let canonical = entry.canonical[0].name(block: match.block)
                switch entry.transform {
                case .identity: out[canonical] = QuantizedWeight(format: format, shape: tensor.shape, rope: blocks.rope)
                case .rotaryInterleaved:
                    let rowBytes = rowElements / blocks.type.blockSize * blocks.type.blockBytes
                    let rope = RowLayout(rowBytes: rowBytes).permuted(
                        blocks.rope, headDim: architecture.rotaryHeadDim, fromInterleaved: true)
                    out[canonical] = QuantizedWeight(format: format, shape: tensor.shape, rope: rope)
                default: break
                }
            }
        }
        return out
    }
}
