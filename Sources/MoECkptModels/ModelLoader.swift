import MoECkptFormats
import MoECkptTensors

/// A checkpoint loaded as a canonical model.
public struct LoadedModel: Sendable {
    public let architecture: Architecture
    /// Where the description came from (config.json, params.json or the GGUF metadata).
    public let descriptionSource: String
    public let layout: NamingLayout
    /// The canonical tensors, in the architecture's order.
    public let tensors: [CanonicalTensor]
    public let checkpoint: Checkpoint

    public func tensor(_ name: String) -> CanonicalTensor? { tensors.first { $0.name == name } }
}

/// Finds a checkpoint's model description, recognises its naming layout and loads it canonically.
public enum ModelLoader {
    /// The architecture of a checkpoint, from the description file beside its data files, or
    /// from llama.cpp's keys in its metadata.
    public static func describe(_ checkpoint: Checkpoint) throws(FileError) -> (Architecture, source: String) {
        if let model = checkpoint.native?.model {
            do {
                return (try Architecture(configJSON: model), "the .moeckpt header")
            } catch {
                throw FileError(path: checkpoint.path, problem: error)
            }
        }
        let directory = FileSystem.directoryName(checkpoint.files.first ?? checkpoint.path)
        let configPath = FileSystem.join(directory, DescriptionFile.configJSON.rawValue)
        let paramsPath = FileSystem.join(directory, DescriptionFile.mistralParams.rawValue)
        do {
            if FileSystem.exists(configPath) {
                return (try Architecture(configJSON: try readObject(configPath)), configPath)
            }
            if FileSystem.exists(paramsPath) {
                let config = try MixtralConfig(mistralParams: try readObject(paramsPath))
                return (.mixtral(config), paramsPath)
            }
        } catch {
            throw FileError(path: FileSystem.exists(configPath) ? configPath : paramsPath, problem: error)
        }
        if MixtralConfig.hasGGUFMetadata(checkpoint.metadata) {
            do {
                var config = try MixtralConfig(ggufMetadata: checkpoint.metadata)
                config.tieWordEmbeddings = checkpoint.tensor(named: "output.weight") == nil
                return (.mixtral(config), "__metadata__ (GGUF keys)")
            } catch {
                throw FileError(path: checkpoint.path, problem: error)
            }
        }
        throw FileError(path: checkpoint.path, problem: ModelConfigError.noDescription)
    }

    /// Why a description cannot be this checkpoint's, judged from counts alone before its tensors
    /// are listed (a config that plans 2^24 layers must be refused at once, not expanded): every
    /// canonical tensor is at least half a stored tensor (fused layouts store two in one), and
    /// its parameters need at least the bits of the narrowest dtype present. A description that
    /// misses by a little (a few tensors absent) passes, to be told apart tensor by tensor; the
    /// work of listing stays proportional to the checkpoint's size.
    public static func scaleProblem(_ architecture: Architecture, _ checkpoint: Checkpoint) -> String? {
        let storedBytes = checkpoint.tensors.reduce(0) { $0 &+ $1.byteCount }
        let narrowestBits = checkpoint.tensors.map(\.dtype.bits).min() ?? 8
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

    static func readObject(_ path: String) throws(ModelConfigError) -> JSONObject {
        let mapping: FileMapping
        do { mapping = try FileMapping(path: path, maximumBytes: descriptionLimitBytes) } catch {
            throw .unreadable(error.problem.description)
        }
        return try ConfigFields.parse(mapping.bytes)
    }

    /// Opens and loads a checkpoint; every mismatch between the checkpoint and its description is
    /// reported in one error.
    public static func load(_ path: String) throws(FileError) -> LoadedModel {
        try load(try Checkpoint.open(path))
    }

    public static func load(_ checkpoint: Checkpoint) throws(FileError) -> LoadedModel {
        let (architecture, source) = try describe(checkpoint)
        if let problem = scaleProblem(architecture, checkpoint) {
            throw FileError(path: checkpoint.path, problem: ModelLoadError.problems([problem]))
        }
        let stored = checkpoint.tensors.map { NamedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, rope: $0.rope) }
        let layout = NamingLayout.detect(stored.map(\.name), among: architecture.layouts) ?? architecture.layouts[0]
        let (tensors, mappingProblems) = LayoutMapper.load(stored, architecture: architecture, layout: layout)
        let problems = architecture.inconsistencies + mappingProblems
        guard problems.isEmpty else { throw FileError(path: checkpoint.path, problem: ModelLoadError.problems(problems)) }
        return LoadedModel(architecture: architecture, descriptionSource: source, layout: layout, tensors: tensors,
                           checkpoint: checkpoint)
    }
}
