import MoECkptFormats
import MoECkptModels

/// Qwen2-MoE (`Qwen2MoeForCausalLM`): q/k/v biases, softmax router renormalised only with
/// `norm_topk_prob`, a shared expert scaled by sigmoid(shared_expert_gate(x)), and dense layers
/// (`mlp_only_layers`, `decoder_sparse_step`) of `intermediate_size`.
public struct Qwen2MoEConfig: GGUFDescribed {
    public static let modelType = "qwen2_moe"
    public var fields: DecoderFields
    public var intermediateSize, moeIntermediateSize, sharedExpertIntermediateSize: Int
    public var numExperts, expertsPerToken, decoderSparseStep: Int
    public var normTopKProb, qkvBias, useSlidingWindow: Bool
    public var mlpOnlyLayers: [Int]
    public var routerAuxLossCoef: Double

    public init(configJSON f: inout ConfigFields) {
        fields = DecoderFields(&f, epsDefault: 1e-6)
        intermediateSize = f.optionalCount("intermediate_size") ?? 5632
        moeIntermediateSize = f.count("moe_intermediate_size")
        sharedExpertIntermediateSize = f.optionalCount("shared_expert_intermediate_size", allowZero: true) ?? 0
        numExperts = f.count(anyOf: ["num_experts", "num_local_experts"])
        expertsPerToken = f.count("num_experts_per_tok")
        decoderSparseStep = f.optionalCount("decoder_sparse_step") ?? 1
        normTopKProb = f.optionalBool("norm_topk_prob") ?? false
        qkvBias = f.optionalBool("qkv_bias") ?? true
        useSlidingWindow = f.optionalBool("use_sliding_window") ?? false
        mlpOnlyLayers = f.optionalCounts("mlp_only_layers") ?? []
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.001
    }

    public var configJSON: JSONObject {
        JSONObject(
            fields.members(modelType: Self.modelType, architecture: "Qwen2MoeForCausalLM") + [
                ("intermediate_size", .integer(intermediateSize)), ("moe_intermediate_size", .integer(moeIntermediateSize)),
                ("shared_expert_intermediate_size", .integer(sharedExpertIntermediateSize)),
                ("num_experts", .integer(numExperts)), ("num_experts_per_tok", .integer(expertsPerToken)),
                ("decoder_sparse_step", .integer(decoderSparseStep)), ("norm_topk_prob", .bool(normTopKProb)),
                ("qkv_bias", .bool(qkvBias)), ("use_sliding_window", .bool(useSlidingWindow)),
                ("mlp_only_layers", .array(mlpOnlyLayers.map { .integer($0) })),
                ("router_aux_loss_coef", .float(routerAuxLossCoef)),
            ])
    }

    public var inconsistencies: [String] {
        var problems = fields.activationProblems + decoder.inconsistencies
        if useSlidingWindow { problems.append("use_sliding_window (per-layer sliding attention) is not implemented by moeckpt") }
        return problems
    }

    /// A layer is sparse unless listed in `mlp_only_layers` or off the `decoder_sparse_step` grid.
    static func denseLayers(_ layers: Int, step: Int, mlpOnly: [Int]) -> [Int] {
        let listed = Set(mlpOnly)
        return (0..<layers).filter { listed.contains($0) || ($0 + 1) % max(step, 1) != 0 }
    }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: moeIntermediateSize,
            router: RouterSemantics(renormalize: normTopKProb))
        d.attentionBias = qkvBias
        if sharedExpertIntermediateSize > 0 { d.sharedExpert = .init(intermediate: sharedExpertIntermediateSize, gated: true) }
        d.denseLayers = Self.denseLayers(fields.numLayers, step: decoderSparseStep, mlpOnly: mlpOnlyLayers)
        d.denseIntermediate = intermediateSize
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
        var lost = layout == "gguf" ? GGUFNames.decoderLimits(decoder, hiddenAct: fields.hiddenAct) : []
        let tool = layout == "gguf" ? "llama.cpp" : "mlx-lm"
        if !qkvBias { lost.append("qkv_bias false (\(tool)'s Qwen2-MoE always has q/k/v biases)") }
        if normTopKProb { lost.append("norm_topk_prob true (\(tool)'s Qwen2-MoE does not renormalise)") }
        guard layout == "mlx" else { return lost }
        if !qkvBias { lost.append("qkv_bias false (mlx-lm's Qwen2-MoE always has q/k/v biases)") }
        if normTopKProb { lost.append("norm_topk_prob true (mlx-lm's Qwen2-MoE does not renormalise)") }
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
