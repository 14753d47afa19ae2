import MoECkptFormats
import MoECkptModels

/// Qwen3-MoE (`Qwen3MoeForCausalLM`): Qwen2-MoE without the shared expert, an RMSNorm of each
/// query and key head (one weight of head_dim) before the rotary embedding, and an explicit
/// `head_dim`; `attention_bias` puts biases on all four projections.
public struct Qwen3MoEConfig: GGUFDescribed {
    public static let modelType = "qwen3_moe"
    public var qwen: QwenMoEFields
    public var attentionBias: Bool

    public init(configJSON f: inout ConfigFields) {
        qwen = QwenMoEFields(&f, intermediateDefault: 6144)
        attentionBias = f.optionalBool("attention_bias") ?? false
    }

    public var configJSON: JSONObject {
        JSONObject(
            qwen.members(modelType: Self.modelType, architecture: "Qwen3MoeForCausalLM") + [("attention_bias", .bool(attentionBias))])
    }

    public var inconsistencies: [String] { qwen.inconsistencies }

    public var decoder: DecoderConfig {
        var d = qwen.decoder
        d.attentionBias = attentionBias
        d.attentionOutputBias = attentionBias
        d.qkNorm = .perHead
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

    /// The value heads' size too (the converter writes both; llama.cpp sizes v and the k/v cache by it).
    var computedGGUFKeys: [String: String?] { ["attention.value_length": qwen.decoderFields.explicitHeadDim.map(String.init)] }

    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "gguf" else { return [] }
        var lost = GGUFNames.decoderLimits(decoder, hiddenAct: qwen.decoderFields.hiddenAct)
        if !qwen.normTopKProb { lost.append("norm_topk_prob false (llama.cpp's Qwen3-MoE renormalises)") }
        if attentionBias { lost.append("attention_bias true (llama.cpp's Qwen3-MoE has no attention biases)") }
        return lost
    }

    static func transformers(_ storage: TransformersNames.ExpertStorage) -> [LayoutEntry] {
        TransformersNames.attention + TransformersNames.qwenExperts(storage) + TransformersNames.gatedMLP("mlp", "mlp")
    }

    /// mlx-lm's `quant_predicate` (models/qwen3_moe.py): the router at 8 bits.
    public static let mlxQuantizationRules = MLXQuantizationRules(overrides: [("mlp.gate", 8, 64)])

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers(.perExpert)),
        NamingLayout(key: "hf-fused", title: "transformers 5 fused experts", entries: transformers(.fused)),
        NamingLayout(key: "mlx", title: "mlx-lm (stacked experts)", entries: transformers(.mlx)),
        GGUFNames.layout(interleavedRotary: false),
    ]
}
