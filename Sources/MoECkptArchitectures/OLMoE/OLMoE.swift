import MoECkptFormats
import MoECkptModels

/// OLMoE (`OlmoeForCausalLM`): an RMSNorm over the whole query and key projections, then
/// queries, keys and values clamped to `clip_qkv`; softmax router renormalised only with
/// `norm_topk_prob`; `intermediate_size` is each expert's.
public struct OLMoEConfig: GGUFDescribed {
    public static let modelType = "olmoe"
    public var fields: DecoderFields
    public var intermediateSize, numExperts, expertsPerToken: Int
    public var normTopKProb, attentionBias: Bool
    public var clipQKV: Double?
    public var routerAuxLossCoef: Double

    public init(configJSON f: inout ConfigFields) {
        fields = DecoderFields(&f, epsDefault: 1e-5)
        intermediateSize = f.count("intermediate_size")
        numExperts = f.count(anyOf: ["num_experts", "num_local_experts"])
        expertsPerToken = f.count("num_experts_per_tok")
        normTopKProb = f.optionalBool("norm_topk_prob") ?? false
        attentionBias = f.optionalBool("attention_bias") ?? false
        clipQKV = f.optionalDouble("clip_qkv")
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.01
    }

    public var configJSON: JSONObject {
        JSONObject(
            fields.members(modelType: Self.modelType, architecture: "OlmoeForCausalLM") + [
                ("intermediate_size", .integer(intermediateSize)), ("num_experts", .integer(numExperts)),
                ("num_experts_per_tok", .integer(expertsPerToken)), ("norm_topk_prob", .bool(normTopKProb)),
                ("attention_bias", .bool(attentionBias)), ("clip_qkv", clipQKV.map { .float($0) } ?? .null),
                ("router_aux_loss_coef", .float(routerAuxLossCoef)),
            ])
    }

    public var inconsistencies: [String] {
        var problems = fields.activationProblems + decoder.inconsistencies
        if let clipQKV, !(clipQKV > 0) { problems.append("clip_qkv (\(clipQKV)) must be positive") }
        return problems
    }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: intermediateSize,
            router: RouterSemantics(renormalize: normTopKProb))
        d.attentionBias = attentionBias
        d.attentionOutputBias = attentionBias
        d.qkNorm = .fullWidth
        d.clipQKV = clipQKV
        return d
    }

    /// llama.cpp's `olmoe` (its converter writes no `clip_qkv`; weights never renormalised).
    static let gguf = GGUFKeys(
        architecture: "olmoe", rows: [("expert_count", "num_experts", .count)], fixed: [("norm_topk_prob", .bool(false))])

    /// mlx-lm's and llama.cpp's OLMoE have no `clip_qkv` and no attention biases; llama.cpp's
    /// does not renormalise.
    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "mlx" || layout == "gguf" else { return [] }
        var lost = layout == "gguf" ? GGUFNames.decoderLimits(decoder, hiddenAct: fields.hiddenAct) : []
        let tool = layout == "gguf" ? "llama.cpp" : "mlx-lm"
        if let clipQKV { lost.append("clip_qkv \(clipQKV) (\(tool)'s OLMoE does not clamp)") }
        if attentionBias { lost.append("attention_bias true (\(tool)'s OLMoE has no attention biases)") }
        if layout == "gguf" && normTopKProb { lost.append("norm_topk_prob true (llama.cpp's OLMoE does not renormalise)") }
        return lost
    }

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: TransformersNames.attention + TransformersNames.qwenExperts(.perExpert)),
        NamingLayout(
            key: "hf-fused", title: "transformers 5 fused experts",
            entries: TransformersNames.attention + TransformersNames.qwenExperts(.fused)),
        NamingLayout(
            key: "mlx", title: "mlx-lm (stacked experts)", entries: TransformersNames.attention + TransformersNames.qwenExperts(.mlx)),
        GGUFNames.layout(interleavedRotary: false),
    ]
}
