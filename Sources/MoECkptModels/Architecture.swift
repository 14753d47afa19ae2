import MoECkptFormats
import MoECkptTensors

/// A canonical tensor a model needs: its name and shape.
public struct TensorRequirement: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
}

/// The models moeckpt describes: Mixtral, and the reference PyTorch modules of the project's seeds.
/// Each case's canonical tensors stack experts into one tensor per projection, [experts, out, in].
public enum Architecture: Equatable, Sendable {
    case mixtral(MixtralConfig)
    case mixtureOfExperts(TopKMoEConfig)
    case switchTransformer(SwitchConfig)
    case mixtralBlock(MixtralBlockConfig)
    case basicMoE(BasicMoEConfig)
    case sparseMoE(SparseMoEConfig)

    public static let modelTypes = ["mixtral", "mixture_of_experts", "switch_transformer", "mixtral_block",
                                    "basic_moe", "sparse_moe"]

    public var modelType: String {
        switch self {
        case .mixtral: "mixtral"
        case .mixtureOfExperts: "mixture_of_experts"
        case .switchTransformer: "switch_transformer"
        case .mixtralBlock: "mixtral_block"
        case .basicMoE: "basic_moe"
        case .sparseMoE: "sparse_moe"
        }
    }

    /// Reads a config.json: `model_type` picks the architecture, the other fields its config.
    public init(configJSON object: JSONObject) throws(ModelConfigError) {
        var f = ConfigFields(object)
        guard let type = f.optionalString("model_type") else {
            try f.check()
            throw .problems(["model_type is missing"])
        }
        switch type {
        case "mixtral": self = .mixtral(try MixtralConfig(huggingFace: object))
        case "mixture_of_experts": self = .mixtureOfExperts(TopKMoEConfig(&f))
        case "switch_transformer": self = .switchTransformer(SwitchConfig(&f))
        case "mixtral_block": self = .mixtralBlock(MixtralBlockConfig(&f))
        case "basic_moe": self = .basicMoE(BasicMoEConfig(&f))
        case "sparse_moe": self = .sparseMoE(SparseMoEConfig(&f))
        default: throw .unknownModelType(type)
        }
        try f.check()
    }

    /// The config.json that describes this architecture.
    public var configJSON: String {
        var w = JSONObjectWriter()
        switch self {
        case .mixtral(let c): return c.huggingFaceJSON
        case .mixtureOfExperts(let c):
            w.add("model_type", string: modelType)
            w.add("d_model", c.dModel); w.add("d_ff", c.dFF); w.add("num_experts", c.numExperts); w.add("k", c.k)
        case .switchTransformer(let c):
            w.add("model_type", string: modelType)
            w.add("d_model", c.dModel); w.add("num_experts", c.numExperts); w.add("capacity_factor", c.capacityFactor)
            if c.scaleByRouterProbability { w.add("scale_by_router_probability", true) }
        case .mixtralBlock(let c):
            w.add("model_type", string: modelType)
            w.add("d_model", c.dModel); w.add("n_heads", c.nHeads); w.add("num_experts", c.numExperts); w.add("k", c.k)
        case .basicMoE(let c):
            w.add("model_type", string: modelType)
            w.add("feature_in", c.featureIn); w.add("feature_out", c.featureOut); w.add("num_experts", c.numExperts)
        case .sparseMoE(let c):
            w.add("model_type", string: modelType)
            w.add("hidden_dim", c.hiddenDim); w.add("expert_number", c.expertNumber); w.add("top_k", c.topK)
            w.add("shared_experts_number", c.sharedExpertsNumber)
        }
        return w.text
    }

    /// Problems in the configuration itself.
    public var inconsistencies: [String] {
        switch self {
        case .mixtral(let c): return c.inconsistencies
        case .mixtureOfExperts(let c):
            return c.k > c.numExperts ? ["k (\(c.k)) exceeds num_experts (\(c.numExperts))"] : []
        case .mixtralBlock(let c):
            var problems = c.k > c.numExperts ? ["k (\(c.k)) exceeds num_experts (\(c.numExperts))"] : []
            if c.dModel % c.nHeads != 0 { problems.append("d_model (\(c.dModel)) is not divisible by n_heads (\(c.nHeads))") }
            return problems
        case .sparseMoE(let c):
            return c.topK > c.expertNumber ? ["top_k (\(c.topK)) exceeds expert_number (\(c.expertNumber))"] : []
        case .switchTransformer(let c):
            return c.capacityFactor > 0 ? [] : ["capacity_factor must be positive"]
        case .basicMoE:
            return []
        }
    }

    /// Head size, for layouts that store query/key rows in interleaved rotary order.
    var headDim: Int {
        if case .mixtral(let c) = self { return c.headDim }
        return 0
    }

    /// How many canonical tensors and parameters the description plans, computed without listing
    /// them (nil when the count overflows), so that a description too large for its checkpoint is
    /// refused before it is expanded.
    public var plannedScale: (tensors: Int, parameters: Int)? {
        func scale(_ tensors: [TensorRequirement]) -> (tensors: Int, parameters: Int)? {
            var parameters = Checked(0)
            for tensor in tensors { parameters = parameters + Checked(try? Shape.elementCount(tensor.shape)) }
            return parameters.value.map { (tensors.count, $0) }
        }
        // The seed modules plan a fixed handful of tensors; Mixtral's are listed with no layer and
        // with one, which gives a layer's share from the same table without listing them all.
        guard case .mixtral(var c) = self else { return scale(canonicalTensors) }
        let layers = c.numLayers
        c.numLayers = 0
        guard let base = scale(Architecture.mixtral(c).canonicalTensors) else { return nil }
        c.numLayers = 1
        guard let one = scale(Architecture.mixtral(c).canonicalTensors) else { return nil }
        let tensors = Checked(one.tensors - base.tensors) * layers + base.tensors
        let parameters = Checked(one.parameters - base.parameters) * layers + base.parameters
        guard let tensors = tensors.value, let parameters = parameters.value else { return nil }
        return (tensors, parameters)
    }

    /// Every canonical tensor with its shape, in a stable order.
    public var canonicalTensors: [TensorRequirement] {
        func t(_ name: String, _ shape: [Int]) -> TensorRequirement { TensorRequirement(name: name, shape: shape) }
        /// A linear layer per expert, stacked: weight [n, out, in] and bias [n, out].
        func experts(_ prefix: String, _ n: Int, _ out: Int, _ input: Int) -> [TensorRequirement] {
            [t(prefix + ".weight", [n, out, input]), t(prefix + ".bias", [n, out])]
        }
        func linear(_ prefix: String, _ out: Int, _ input: Int) -> [TensorRequirement] {
            [t(prefix + ".weight", [out, input]), t(prefix + ".bias", [out])]
        }
        switch self {
        case .mixtral(let c):
            let (h, e, i) = (c.hiddenSize, c.numExperts, c.intermediateSize)
            var list = [t("embed", [c.vocabSize, h])]
            for l in 0..<c.numLayers {
                let p = "layers.\(l)."
                list += [
                    t(p + "attn_norm", [h]),
                    t(p + "attn.q", [c.numHeads * c.headDim, h]),
                    t(p + "attn.k", [c.numKVHeads * c.headDim, h]),
                    t(p + "attn.v", [c.numKVHeads * c.headDim, h]),
                    t(p + "attn.o", [h, c.numHeads * c.headDim]),
                    t(p + "ffn_norm", [h]),
                    t(p + "moe.router", [e, h]),
                    t(p + "moe.gate", [e, i, h]),
                    t(p + "moe.up", [e, i, h]),
                    t(p + "moe.down", [e, h, i]),
                ]
            }
            list.append(t("final_norm", [h]))
            if !c.tieWordEmbeddings { list.append(t("lm_head", [c.vocabSize, h])) }
            return list
        case .mixtureOfExperts(let c):
            return linear("router", c.numExperts, c.dModel) + experts("experts.w1", c.numExperts, c.dFF, c.dModel)
                + experts("experts.w2", c.numExperts, c.dModel, c.dFF)
        case .switchTransformer(let c):
            return linear("router", c.numExperts, c.dModel) + experts("experts.w1", c.numExperts, 4 * c.dModel, c.dModel)
                + experts("experts.w2", c.numExperts, c.dModel, 4 * c.dModel)
        case .mixtralBlock(let c):
            let d = c.dModel
            return [t("attn.in_proj.weight", [3 * d, d]), t("attn.in_proj.bias", [3 * d])] + linear("attn.out_proj", d, d)
                + linear("moe.router", c.numExperts, d) + experts("moe.experts.w1", c.numExperts, 4 * d, d)
                + experts("moe.experts.w2", c.numExperts, d, 4 * d)
                + [t("ln1.weight", [d]), t("ln1.bias", [d]), t("ln2.weight", [d]), t("ln2.bias", [d])]
        case .basicMoE(let c):
            return linear("gate", c.numExperts, c.featureIn) + experts("experts.fc", c.numExperts, c.featureOut, c.featureIn)
        case .sparseMoE(let c):
            let h = c.hiddenDim
            var list = linear("router", c.expertNumber, h) + experts("experts.fc", c.expertNumber, h, h)
            if c.sharedExpertsNumber > 0 { list += experts("shared.fc", c.sharedExpertsNumber, h, h) }
            return list
        }
    }

    /// The naming layouts this architecture's checkpoints come in, moeckpt's canonical names last.
    public var layouts: [NamingLayout] {
        let external = externalLayouts
        return external + [NamingLayout.canonical(from: external[0])]
    }

    var externalLayouts: [NamingLayout] {
        switch self {
        case .mixtral: MixtralLayouts.all
        case .mixtureOfExperts: [SeedLayouts.mixtureOfExperts]
        case .switchTransformer: [SeedLayouts.switchTransformer]
        case .mixtralBlock: [SeedLayouts.mixtralBlock]
        case .basicMoE: [SeedLayouts.basicMoE]
        case .sparseMoE: [SeedLayouts.sparseMoE]
        }
    }
}
