import MoECkptFormats
import MoECkptModels

/// Qwen3-MoE (`Qwen3MoeForCausalLM`): Qwen2-MoE without the shared expert, an RMSNorm of each
/// query and key head (one weight of head_dim) before the rotary embedding, and an explicit
/// `head_dim`; `attention_bias` puts biases on all four projections.
public struct Qwen3MoEConfig: GGUFDescribed {
    public static let modelType = "qwen3_moe"
    public var fields: DecoderFields
    public var intermediateSize, moeIntermediateSize: Int
    public var numExperts, expertsPerToken, decoderSparseStep: Int
    public var normTopKProb, attentionBias, useSlidingWindow: Bool
    public var mlpOnlyLayers: [Int]
    public var routerAuxLossCoef: Double

    public init(configJSON f: inout ConfigFields) {
        fields = DecoderFields(&f, epsDefault: 1e-6)
        intermediateSize = f.optionalCount("intermediate_size") ?? 6144
        moeIntermediateSize = f.count("moe_intermediate_size")
        numExperts = f.count(anyOf: ["num_experts", "num_local_experts"])
        expertsPerToken = f.count("num_experts_per_tok")
        decoderSparseStep = f.optionalCount("decoder_sparse_step") ?? 1
        normTopKProb = f.optionalBool("norm_topk_prob") ?? false
        attentionBias = f.optionalBool("attention_bias") ?? false
        useSlidingWindow = f.optionalBool("use_sliding_window") ?? false
        mlpOnlyLayers = f.optionalCounts("mlp_only_layers") ?? []
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.001
    }

    public var configJSON: JSONObject {
        JSONObject(
            fields.members(modelType: Self.modelType, architecture: "Qwen3MoeForCausalLM") + [
                ("intermediate_size", .integer(intermediateSize)), ("moe_intermediate_size", .integer(moeIntermediateSize)),
                ("num_experts", .integer(numExperts)), ("num_experts_per_tok", .integer(expertsPerToken)),
                ("decoder_sparse_step", .integer(decoderSparseStep)), ("norm_topk_prob", .bool(normTopKProb)),
                ("attention_bias", .bool(attentionBias)), ("use_sliding_window", .bool(useSlidingWindow)),
                ("mlp_only_layers", .array(mlpOnlyLayers.map { .integer($0) })),
                ("router_aux_loss_coef", .float(routerAuxLossCoef)),
            ])
    }

    public var inconsistencies: [String] {
        var problems = fields.activationProblems + decoder.inconsistencies
        if useSlidingWindow { problems.append("use_sliding_window (per-layer sliding attention) is not implemented by moeckpt") }
        return problems
    }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: moeIntermediateSize,
            router: RouterSemantics(renormalize: normTopKProb))
        d.attentionBias = attentionBias
        d.attentionOutputBias = attentionBias
        d.qkNorm = .perHead
        d.denseLayers = Qwen2MoEConfig.denseLayers(fields.numLayers, step: decoderSparseStep, mlpOnly: mlpOnlyLayers)
        d.denseIntermediate = intermediateSize
        return d
    }

    /// llama.cpp's `qwen3moe`: the head size as `attention.key_length`, weights always
    /// renormalised (every released Qwen3-MoE sets `norm_topk_prob`).
    static let gguf = GGUFKeys(
        architecture: "qwen3moe",
        rows: [
            ("expert_count", "num_experts", .count), ("expert_feed_forward_length", "moe_intermediate_size", .count),
            ("attention.key_length", "head_dim", .count),
        ], fixed: [("norm_topk_prob", .bool(true))])

    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "gguf" else { return [] }
        var lost = GGUFNames.decoderLimits(decoder, hiddenAct: fields.hiddenAct)
        if !normTopKProb { lost.append("norm_topk_prob false (llama.cpp's Qwen3-MoE renormalises)") }
        if attentionBias { lost.append("attention_bias true (llama.cpp's Qwen3-MoE has no attention biases)") }
        return lost
    }

    static func transformers(_ storage: TransformersNames.ExpertStorage) -> [LayoutEntry] {
        TransformersNames.attention + TransformersNames.qwenExperts(storage) + TransformersNames.gatedMLP("mlp", "mlp")
    }

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers(.perExpert)),
        NamingLayout(key: "hf-fused", title: "transformers 5 fused experts", entries: transformers(.fused)),
        NamingLayout(key: "mlx", title: "mlx-lm (stacked experts)", entries: transformers(.mlx)),
        GGUFNames.layout(interleavedRotary: false),
    ]
}
