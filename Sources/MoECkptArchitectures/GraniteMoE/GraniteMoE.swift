import MoECkptFormats
import MoECkptModels

/// GraniteMoE (`GraniteMoeForCausalLM`) and GraniteMoE with a shared MLP
/// (`GraniteMoeSharedForCausalLM`): top-k of the router logits, softmax over those k; the
/// embeddings times `embedding_multiplier`, each block's output times `residual_multiplier`
/// before the residual, attention scaled by `attention_multiplier`, logits divided by
/// `logits_scaling`. Experts are stored stacked, gate and up rows in one tensor.
public struct GraniteMoEConfig: GGUFDescribed {
    public static let modelType = "granitemoe"
    public var fields: DecoderFields
    public var intermediateSize, numExperts, expertsPerToken: Int
    public var attentionBias: Bool
    public var embeddingMultiplier, residualMultiplier, attentionMultiplier, logitsScaling: Double
    public var routerAuxLossCoef: Double
    /// The shared MLP's rows (granitemoeshared; 0: none).
    public var sharedIntermediateSize = 0

    public init(configJSON f: inout ConfigFields) {
        fields = DecoderFields(&f, epsDefault: 1e-6)
        intermediateSize = f.count("intermediate_size")
        numExperts = f.count(anyOf: ["num_local_experts", "num_experts"])
        expertsPerToken = f.count("num_experts_per_tok")
        attentionBias = f.optionalBool("attention_bias") ?? false
        embeddingMultiplier = f.optionalDouble("embedding_multiplier") ?? 1
        residualMultiplier = f.optionalDouble("residual_multiplier") ?? 1
        attentionMultiplier = f.optionalDouble("attention_multiplier") ?? 1
        logitsScaling = f.optionalDouble("logits_scaling") ?? 1
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.001
    }

    var members: [(String, JSONValue)] {
        [
            ("intermediate_size", .integer(intermediateSize)), ("num_local_experts", .integer(numExperts)),
            ("num_experts_per_tok", .integer(expertsPerToken)), ("attention_bias", .bool(attentionBias)),
            ("embedding_multiplier", .float(embeddingMultiplier)), ("residual_multiplier", .float(residualMultiplier)),
            ("attention_multiplier", .float(attentionMultiplier)), ("logits_scaling", .float(logitsScaling)),
            ("router_aux_loss_coef", .float(routerAuxLossCoef)),
        ]
    }

    public var configJSON: JSONObject {
        JSONObject(fields.members(modelType: Self.modelType, architecture: "GraniteMoeForCausalLM") + members)
    }

    public var inconsistencies: [String] { fields.activationProblems + decoder.inconsistencies }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: intermediateSize,
            router: .softmaxOfTopKLogits)
        d.attentionBias = attentionBias
        d.attentionOutputBias = attentionBias
        d.attentionScale = attentionMultiplier
        d.embeddingMultiplier = embeddingMultiplier
        d.residualMultiplier = residualMultiplier
        d.logitsScaling = logitsScaling
        if sharedIntermediateSize > 0 { d.sharedExpert = .init(intermediate: sharedIntermediateSize, gated: false) }
        return d
    }

    /// `input_linear` [E, 2I, H] (gate rows first), `output_linear` [E, H, I]; transformers 5
    /// renames them (`experts.gate_up_proj`, `experts.down_proj`, `router.weight`); mlx-lm splits
    /// them into `switch_mlp.{gate,up,down}_proj`.
    static func transformers(_ storage: TransformersNames.ExpertStorage) -> [LayoutEntry] {
        let moe = "model.layers.{bid}.block_sparse_moe."
        let experts: [LayoutEntry]
        switch storage {
        case .perExpert, .fused:
            let (gateUp, down) =
                storage == .fused ? ("experts.gate_up_proj", "experts.down_proj") : ("input_linear.weight", "output_linear.weight")
            experts = [
                LayoutEntry(moe + gateUp, fused: ["layers.{bid}.moe.gate", "layers.{bid}.moe.up"]),
                LayoutEntry(moe + down, "layers.{bid}.moe.down"),
            ]
        case .mlx:
            experts = ["gate", "up", "down"].map { LayoutEntry(moe + "switch_mlp.\($0)_proj.weight", "layers.{bid}.moe.\($0)") }
        }
        let router = LayoutEntry(moe + (storage == .fused ? "router.weight" : "router.layer.weight"), "layers.{bid}.moe.router")
        return TransformersNames.attention + [router] + experts + [
            LayoutEntry(
                "model.layers.{bid}.shared_mlp.input_linear.weight",
                fusedRows: ["layers.{bid}.moe.shared.gate", "layers.{bid}.moe.shared.up"]),
            LayoutEntry("model.layers.{bid}.shared_mlp.output_linear.weight", "layers.{bid}.moe.shared.down"),
        ]
    }

    /// llama.cpp's `granitemoe` (also the shared variant's: `expert_shared_feed_forward_length`);
    /// its converter drops `head_dim` and permutes q/k rows (NORM rotary).
    static let ggufRows: [(gguf: String, json: String, kind: GGUFKeys.Kind)] = [
        ("expert_count", "num_local_experts", .count), ("attention.scale", "attention_multiplier", .number),
        ("embedding_scale", "embedding_multiplier", .number), ("residual_scale", "residual_multiplier", .number),
        ("logit_scale", "logits_scaling", .number),
    ]
    static let gguf = GGUFKeys(architecture: "granitemoe", rows: ggufRows)

    /// A GraniteMoE whose metadata names a shared MLP is GraniteMoE-shared's.
    public static func read(_ description: OtherDescription) throws(ModelConfigError) -> GraniteMoEConfig? {
        if case .ggufMetadata(let metadata, _) = description, metadata["granitemoe.expert_shared_feed_forward_length"] != nil {
            return nil
        }
        return try gguf.read(description, as: Self.self)
    }

    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "gguf" else { return [] }
        var lost = GGUFNames.decoderLimits(decoder, hiddenAct: fields.hiddenAct)
        if let headDim = fields.explicitHeadDim, headDim != fields.hiddenSize / max(fields.numHeads, 1) {
            lost.append("head_dim \(headDim) (llama.cpp's GraniteMoE uses hidden_size / heads)")
        }
        if attentionBias { lost.append("attention_bias true (llama.cpp's GraniteMoE has no attention biases)") }
        return lost
    }

    static let transformersLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers(.perExpert)),
        NamingLayout(key: "hf-fused", title: "transformers 5 fused experts", entries: transformers(.fused)),
    ]

    /// mlx-lm's `quant_predicate` (models/granitemoe.py): the router, the attention output, the
    /// dense MLP's down projection and the head at 8 bits.
    public static let mlxQuantizationRules = MLXQuantizationRules(overrides: [
        ("block_sparse_moe.router.layer", 8, 64), ("self_attn.o_proj", 8, 64), ("mlp.down_proj", 8, 64), ("lm_head", 8, 64),
    ])

    public static let externalLayouts =
        transformersLayouts + [
            NamingLayout(key: "mlx", title: "mlx-lm (stacked experts)", entries: transformers(.mlx)),
            GGUFNames.layout(interleavedRotary: true),
        ]
}

/// GraniteMoE with a shared MLP (`granitemoeshared`): `shared_intermediate_size` rows, added to
/// the experts' output.
public struct GraniteMoESharedConfig: GGUFDescribed {
    public static let modelType = "granitemoeshared"
    public var granite: GraniteMoEConfig

    public init(configJSON f: inout ConfigFields) {
        granite = GraniteMoEConfig(configJSON: &f)
        granite.sharedIntermediateSize = f.optionalCount("shared_intermediate_size", allowZero: true) ?? 0
    }

    public var configJSON: JSONObject {
        JSONObject(
            granite.fields.members(modelType: Self.modelType, architecture: "GraniteMoeSharedForCausalLM") + granite.members
                + [("shared_intermediate_size", .integer(granite.sharedIntermediateSize))])
    }

    public var inconsistencies: [String] { granite.inconsistencies }
    public var decoder: DecoderConfig { granite.decoder }
    static let gguf = GGUFKeys(
        architecture: "granitemoe",
        rows: GraniteMoEConfig.ggufRows + [("expert_shared_feed_forward_length", "shared_intermediate_size", .count)])

    public func unexpressible(in layout: LayoutKey) -> [String] { granite.unexpressible(in: layout) }

    /// mlx-lm has no shared-MLP GraniteMoE: the transformers and GGUF layouts.
    public static var externalLayouts: [NamingLayout] {
        GraniteMoEConfig.transformersLayouts + [GGUFNames.layout(interleavedRotary: true)]
    }
}
