import MoECkptFormats
import MoECkptTensors

/// A canonical tensor a model needs: its name and shape.
public struct TensorRequirement: Equatable, Sendable {
    public let name: String
    public let shape: [Int]

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

/// Canonical tensors a checkpoint holds all of or none of, which the forward pass does not use.
public struct OptionalTensorGroup: Sendable {
    /// What they are, for messages ("multi-token-prediction layer 61").
    public let title: String
    public let tensors: [TensorRequirement]

    public init(title: String, tensors: [TensorRequirement]) {
        self.title = title
        self.tensors = tensors
    }
}

/// A model family moeckpt knows: its description, tensors, layouts and forward pass, in one type.
/// A value is one model's configuration. Each family conforms in its own file (or folder) under
/// Sources/MoECkptArchitectures and is listed once in the registry there; nothing else names it.
public protocol Architecture: Sendable, Equatable {
    /// config.json's `model_type`.
    static var modelType: String { get }

    /// Reads a config.json with every key variant the family's tools write, leaving every
    /// missing or mistyped field as a problem in `fields` (all are reported at once).
    init(configJSON fields: inout ConfigFields)

    /// A description that is not a config.json with this `model_type` (Mistral's params.json,
    /// llama.cpp's keys); nil when it is not one of this family's.
    static func read(_ description: OtherDescription) throws(ModelConfigError) -> Self?

    /// The naming layouts of the family's checkpoints, in detection order; the first is the one
    /// a new checkpoint is written in. moeckpt's canonical names are added after them.
    static var externalLayouts: [NamingLayout] { get }

    /// Whether a metadata key is part of a description this family writes into the metadata
    /// (dropped when the tensors are written in another layout).
    static func isDescriptionKey(_ key: String) -> Bool

    /// The config.json that describes this model, as an object in the order its keys are written.
    var configJSON: JSONObject { get }

    /// The description a layout keeps beside its weights, when it is not a config.json.
    func description(_ file: DescriptionFile) -> WrittenDescription?

    /// Problems in the configuration itself, which no checkpoint can avoid.
    var inconsistencies: [String] { get }

    /// Every canonical tensor with its shape, in a stable order. Experts are stacked into one
    /// tensor per projection, [experts, out, in].
    var canonicalTensors: [TensorRequirement] { get }

    /// How many canonical tensors and parameters the description plans, without listing them
    /// (nil when the count overflows), so a description too large for its checkpoint is refused
    /// before it is expanded.
    var plannedScale: (tensors: Int, parameters: Int)? { get }

    /// Head size, for layouts that store query/key rows in interleaved rotary order (0: none).
    var rotaryHeadDim: Int { get }

    /// Experts each token is routed to, when the description says (inspect's active parameters).
    var routedExpertsPerToken: Int? { get }

    /// What a layout's tool could not represent of this model (empty: nothing is lost). A
    /// conversion into such a layout is refused with these reasons, never written silently.
    func unexpressible(in layout: LayoutKey) -> [String]

    /// Weights stored as FP8 with a scale per block, dequantized to F32 when loaded (nil: none).
    var blockScaledWeights: BlockScaledWeights? { get }

    /// The stored tensors as the family's layouts name them: quantized weights dequantized (FP8
    /// blocks by default, MXFP4 for gpt-oss); the problems of any that cannot be.
    func prepare(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String])

    /// How mlx-lm quantizes the family's weights (`convert --quantize`).
    static var mlxQuantizationRules: MLXQuantizationRules { get }

    /// Canonical weights the kernels can also read in a block-quantized form, from the stored
    /// tensors (gpt-oss's MXFP4 experts); the forward pass prefers them to `prepare`'s F32.
    func quantizedWeights(_ stored: [NamedTensor]) -> [String: QuantizedWeight]

    /// Tensors a checkpoint may carry or leave out, each group wholly (DeepSeek-V3's
    /// multi-token-prediction layers, `model.layers.N` past `num_hidden_layers`): loaded and
    /// converted when present, never run.
    var optionalTensorGroups: [OptionalTensorGroup] { get }

    /// How the model routes (router semantics, shared expert, dense layers), for reports.
    var moeRouting: MoERouting? { get }

    /// The canonical names of the router and of the expert projections, for reading the MoE
    /// structure off stored names (nil: the family has no summary).
    static var moeRoles: MoERoles? { get }

    /// The forward pass on a loaded model's weights.
    func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass
}

/// A description other than a config.json naming its `model_type`.
public enum OtherDescription: Sendable {
    /// Mistral's params.json.
    case mistralParams(JSONObject)
    /// llama.cpp's key/values, as strings in a safetensors `__metadata__`; whether the checkpoint
    /// has an output (LM head) tensor of its own.
    case ggufMetadata([String: String], hasOutputTensor: Bool)
}

/// A description as written beside (or into) a checkpoint.
public enum WrittenDescription: Equatable, Sendable {
    /// A JSON file's text.
    case text(String)
    /// Key/values merged into the safetensors metadata.
    case metadata([String: String])
}

/// Which canonical names are the router and the routed experts (by suffix and infix of the
/// template); names with `sharedInfix` are the shared expert's, not routed ones.
public struct MoERoles: Sendable {
    public let routerSuffix: String
    public let expertInfix: String
    public let sharedInfix: String?

    public init(routerSuffix: String, expertInfix: String, sharedInfix: String? = nil) {
        self.routerSuffix = routerSuffix
        self.expertInfix = expertInfix
        self.sharedInfix = sharedInfix
    }

    /// Whether a canonical template is a routed expert's projection.
    public func isRoutedExpert(_ template: String) -> Bool {
        template.contains(expertInfix) && !template.contains(routerSuffix)
            && !(sharedInfix.map { template.contains($0) } ?? false)
    }
}

extension Architecture {
    public static func read(_ description: OtherDescription) throws(ModelConfigError) -> Self? { nil }
    public static func isDescriptionKey(_ key: String) -> Bool { false }
    public func description(_ file: DescriptionFile) -> WrittenDescription? { nil }
    public var rotaryHeadDim: Int { 0 }
    public var routedExpertsPerToken: Int? { nil }
    public var moeRouting: MoERouting? { nil }
    public var blockScaledWeights: BlockScaledWeights? { nil }
    public static var mlxQuantizationRules: MLXQuantizationRules { MLXQuantizationRules() }

    public func prepare(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        blockScaledWeights.map { $0.dequantize(stored) } ?? (stored, [])
    }
    public var optionalTensorGroups: [OptionalTensorGroup] { [] }
    public func quantizedWeights(_ stored: [NamedTensor]) -> [String: QuantizedWeight] { [:] }
    public func unexpressible(in layout: LayoutKey) -> [String] { [] }
    public static var moeRoles: MoERoles? { nil }
    public var plannedScale: (tensors: Int, parameters: Int)? { Self.scale(of: canonicalTensors) }

    public var modelType: String { Self.modelType }

    /// The layouts checkpoints come in, moeckpt's canonical names last.
    public var layouts: [NamingLayout] { Self.layouts }

    public static var layouts: [NamingLayout] {
        externalLayouts + [NamingLayout.canonical(from: externalLayouts[0])]
    }

    /// config.json's text, as moeckpt writes it.
    public var configJSONText: String { JSONValue.object(configJSON).serialized(.memberPerLine) + "\n" }

    /// Tensors and parameters of a list of requirements (nil when the parameters overflow).
    public static func scale(of tensors: [TensorRequirement]) -> (tensors: Int, parameters: Int)? {
        var parameters = Checked(0)
        for tensor in tensors { parameters = parameters + Checked(try? Shape.elementCount(tensor.shape)) }
        return parameters.value.map { (tensors.count, $0) }
    }

    /// Whether `other` is the same model description.
    public func isSame(as other: any Architecture) -> Bool { (other as? Self) == self }
}

/// The architectures moeckpt knows, in the order they are tried: the one table a new family is
/// added to (see MoECkptArchitectures' Registry.swift).
public struct ArchitectureRegistry: Sendable {
    public let types: [any Architecture.Type]

    public init(_ types: [any Architecture.Type]) { self.types = types }

    public var modelTypes: [String] { types.map { $0.modelType } }

    /// Every external layout of every family, in registry order (families share keys: `hf` is
    /// each family's transformers names).
    public var layouts: [NamingLayout] { types.flatMap { $0.externalLayouts } }

    /// The `--names` values, each once.
    public var layoutKeys: [LayoutKey] {
        var seen = Set<LayoutKey>()
        return layouts.map(\.key).filter { seen.insert($0).inserted }
    }

    public func layout(_ key: LayoutKey) -> NamingLayout? { layouts.first { $0.key == key } }

    public func isDescriptionKey(_ key: String) -> Bool { types.contains { $0.isDescriptionKey(key) } }

    /// Reads a config.json: `model_type` picks the family, the other fields its configuration.
    public func read(configJSON object: JSONObject) throws(ModelConfigError) -> any Architecture {
        var fields = ConfigFields(object)
        guard let modelType = fields.optionalString("model_type") else {
            try fields.check()
            throw .problems(["model_type is missing"])
        }
        guard let type = types.first(where: { $0.modelType == modelType }) else {
            throw .unknownModelType(modelType, known: modelTypes)
        }
        let architecture = Self.make(type, &fields)
        try fields.check()
        return architecture
    }

    private static func make<A: Architecture>(_ type: A.Type, _ fields: inout ConfigFields) -> any Architecture {
        A(configJSON: &fields)
    }

    /// The first family that reads a description of another kind, or nil when none does.
    public func read(_ description: OtherDescription) throws(ModelConfigError) -> (any Architecture)? {
        for type in types {
            if let architecture = try type.read(description) { return architecture }
        }
        return nil
    }
}
