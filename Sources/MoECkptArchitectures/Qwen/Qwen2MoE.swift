import MoECkptFormats
import MoECkptModels

/// Qwen2-MoE (`Qwen2MoeForCausalLM`): q/k/v biases, softmax router renormalised only with
/// `norm_topk_prob`, a shared expert scaled by sigmoid(shared_expert_gate(x)), and dense layers
/// (`mlp_only_layers`, `decoder_sparse_step`) of `intermediate_size`.
public struct Qwen2MoEConfig: GGUFDescribed {
    public static let modelType = "qwen2_moe"
    public var qwen: QwenMoEFields
    public var sharedExpertIntermediateSize: Int
    public var qkvBias: Bool

    public init(configJSON f: inout ConfigFields) {
        qwen = QwenMoEFields(&f, intermediateDefault: 5632)
        sharedExpertIntermediateSize = f.optionalCount("shared_expert_intermediate_size", allowZero: true) ?? 0
        qkvBias = f.optionalBool("qkv_bias") ?? true
    }

    public var configJSON: JSONObject {
        JSONObject(
            qwen.members(modelType: Self.modelType, architecture: "Qwen2MoeForCausalLM") + [
                ("shared_expert_intermediate_size", .integer(sharedExpertIntermediateSize)), ("qkv_bias", .bool(qkvBias)),
            ])
    }

    public var inconsistencies: [String] { qwen.inconsistencies }

    public var decoder: DecoderConfig {
        var d = qwen.decoder
        d.attentionBias = qkvBias
        if sharedExpertIntermediateSize > 0 { d.sharedExpert = .init(intermediate: sharedExpertIntermediateSize, gated: true) }
        return d
    }

    /// llama.cpp's `qwen2moe`: q/k/v biases always, weights never renormalised (the key set of
    /// its converter; q/k rows in transformers' order, NEOX rotary).
    static let gguf = GGUFKeys(
        architecture: "qwen2moe",
        rows: [
            ("expert_count", "num_experts", .count), ("expert_feed_forward_length", "moe_intermediate_size", .count),
            ("expert_shared_feed_forward_length", "shared_expert_intermediate_size", .count),
        ], fixed: [("qkv_bias", .bool(true)), ("norm_topk_prob", .bool(false))])

    /// mlx-lm's and llama.cpp's Qwen2-MoE always have q/k/v biases, never renormalise and have no
    /// dense layers.
    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "mlx" || layout == "gguf" else { return [] }
        var lost = layout == "gguf" ? GGUFNames.decoderLimits(decoder, hiddenAct: qwen.decoderFields.hiddenAct) : []
        let tool = layout == "gguf" ? "llama.cpp" : "mlx-lm"
        if !qkvBias { lost.append("qkv_bias false (\(tool)'s Qwen2-MoE always has q/k/v biases)") }
        if qwen.normTopKProb { lost.append("norm_topk_prob true (\(tool)'s Qwen2-MoE does not renormalise)") }
        guard layout == "mlx" else { return lost }
        if !decoder.denseLayers.isEmpty {
            lost.append("dense layers \(decoder.denseLayers) (mlx-lm's Qwen2-MoE has experts in every layer)")
        }
        return lost
    }

    static func transformers(_ storage: TransformersNames.ExpertStorage) -> [LayoutEntry] {
        TransformersNames.attention + TransformersNames.qwenExperts(storage)
            + TransformersNames.gatedMLP("mlp.shared_expert", "moe.shared")
            + [LayoutEntry("model.layers.{bid}.mlp.shared_expert_gate.weight", "layers.{bid}.moe.shared_gate")]
            + TransformersNames.gatedMLP("mlp", "mlp")
    }

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers(.perExpert)),
        NamingLayout(key: "hf-fused", title: "transformers 5 fused experts", entries: transformers(.fused)),
        NamingLayout(key: "mlx", title: "mlx-lm (stacked experts)", entries: transformers(.mlx)),
        GGUFNames.layout(interleavedRotary: false),
    ]
}
