import MoECkptFormats
import MoECkptModels

/// DeepSeek-V3 (`DeepseekV3ForCausalLM`): multi-head latent attention; a sigmoid router whose
/// experts are chosen on the scores plus `e_score_correction_bias`, within the `topk_group` best
/// of `n_group` groups, weighted by the unbiased scores (renormalised with `norm_topk_prob`) times
/// `routed_scaling_factor`; `n_shared_experts` shared experts always added; the first
/// `first_k_dense_replace` layers dense.
public struct DeepSeekV3Config: GGUFDescribed {
    public static let modelType = "deepseek_v3"
    public var fields: DecoderFields
    public var intermediateSize, moeIntermediateSize, numRoutedExperts, numSharedExperts, expertsPerToken: Int
    public var groupCount, groupsUsed, firstDenseLayers: Int
    /// `num_nextn_predict_layers`: multi-token-prediction layers a checkpoint may carry.
    public var predictionLayers: Int
    public var qLoraRank: Int?
    public var kvLoraRank, qkNopeHeadDim, qkRopeHeadDim, vHeadDim: Int
    public var normTopKProb, ropeInterleave, attentionBias: Bool
    public var routedScalingFactor: Double
    /// `scoring_func` of DeepSeek's own configs: sigmoid for V3 (transformers never reads it).
    /// Softmax comes from a GGUF file without `expert_gating_func`, which llama.cpp then runs
    /// with softmax (its default, kept for DeepSeek-V2 files).
    public var scoring: RouterSemantics.Scoring
    /// `quantization_config` of the released checkpoints: FP8 weights with a scale per block.
    public var blockScaledWeights: BlockScaledWeights?
    var unsupportedQuantization: String?

    public init(configJSON f: inout ConfigFields) {
        fields = DecoderFields(&f, epsDefault: 1e-6, allowsYaRN: true)
        intermediateSize = f.count("intermediate_size")
        moeIntermediateSize = f.count("moe_intermediate_size")
        numRoutedExperts = f.count("n_routed_experts")
        numSharedExperts = f.optionalCount("n_shared_experts", allowZero: true) ?? 0
        expertsPerToken = f.count("num_experts_per_tok")
        groupCount = f.optionalCount("n_group") ?? 1
        groupsUsed = f.optionalCount("topk_group") ?? 1
        firstDenseLayers = f.optionalCount("first_k_dense_replace", allowZero: true) ?? 0
        predictionLayers = f.optionalCount("num_nextn_predict_layers", allowZero: true) ?? 0
        qLoraRank = f.optionalCount("q_lora_rank")
        kvLoraRank = f.count("kv_lora_rank")
        qkNopeHeadDim = f.count("qk_nope_head_dim")
        qkRopeHeadDim = f.count("qk_rope_head_dim")
        vHeadDim = f.count("v_head_dim")
        normTopKProb = f.optionalBool("norm_topk_prob") ?? true
        ropeInterleave = f.optionalBool("rope_interleave") ?? true
        attentionBias = f.optionalBool("attention_bias") ?? false
        routedScalingFactor = f.optionalDouble("routed_scaling_factor") ?? 1
        scoring = f.optionalChoice("scoring_func", as: RouterSemantics.Scoring.self) ?? .sigmoid
        if let method = f.optionalString("quantization_config.quant_method") {
            let block = f.optionalCounts("quantization_config.weight_block_size") ?? []
            if method == "fp8", block.count == 2, block.allSatisfy({ $0 > 0 }) {
                blockScaledWeights = BlockScaledWeights(rows: block[0], columns: block[1])
            } else {
                unsupportedQuantization = method
            }
        }
    }

    /// The multi-token-prediction layers, `model.layers.N` from `num_hidden_layers` on: a sparse
    /// decoder layer each (never dense), the norms of the embedding and of the hidden state,
    /// their projection, the head's norm, and copies of the embedding and the head (released
    /// checkpoints carry them; `save_pretrained` drops them). Not run, as in transformers.
    public var optionalTensorGroups: [OptionalTensorGroup] {
        let (layers, d) = (fields.numLayers, decoder)
        guard predictionLayers <= layers else { return [] }
        return (layers..<layers + predictionLayers).flatMap { l -> [OptionalTensorGroup] in
            func t(_ name: String, _ shape: [Int]) -> TensorRequirement { TensorRequirement(name: "layers.\(l).mtp." + name, shape: shape) }
            let (h, v) = (d.hiddenSize, d.vocabSize)
            let title = "multi-token-prediction layer \(l)"
            return [
                OptionalTensorGroup(
                    title: title,
                    tensors: d.layerTensors(l) + [t("enorm", [h]), t("hnorm", [h]), t("eh_proj", [h, 2 * h]), t("head_norm", [h])]),
                // Copies of the embedding and the head, which some checkpoints leave out.
                OptionalTensorGroup(title: title, tensors: [t("embed", [v, h])]),
                OptionalTensorGroup(title: title, tensors: [t("head", [v, h])]),
            ]
        }
    }

    public var configJSON: JSONObject {
        JSONObject(
            fields.members(modelType: Self.modelType, architecture: "DeepseekV3ForCausalLM") + [
                ("intermediate_size", .integer(intermediateSize)), ("moe_intermediate_size", .integer(moeIntermediateSize)),
                ("n_routed_experts", .integer(numRoutedExperts)), ("n_shared_experts", .integer(numSharedExperts)),
                ("num_experts_per_tok", .integer(expertsPerToken)), ("n_group", .integer(groupCount)),
                ("topk_group", .integer(groupsUsed)), ("first_k_dense_replace", .integer(firstDenseLayers)),
                ("num_nextn_predict_layers", .integer(predictionLayers)),
                ("q_lora_rank", .integer(qLoraRank)), ("kv_lora_rank", .integer(kvLoraRank)),
                ("qk_nope_head_dim", .integer(qkNopeHeadDim)), ("qk_rope_head_dim", .integer(qkRopeHeadDim)),
                ("v_head_dim", .integer(vHeadDim)), ("norm_topk_prob", .bool(normTopKProb)),
                ("rope_interleave", .bool(ropeInterleave)), ("attention_bias", .bool(attentionBias)),
                ("routed_scaling_factor", .float(routedScalingFactor)),
            ] + (scoring == .sigmoid ? [] : [("scoring_func", .string(scoring.rawValue))]))
    }

    public var inconsistencies: [String] {
        var problems = fields.activationProblems + decoder.inconsistencies
        if numRoutedExperts % groupCount != 0 {
            problems.append("n_routed_experts (\(numRoutedExperts)) is not divisible by n_group (\(groupCount))")
        }
        if groupsUsed > groupCount { problems.append("topk_group (\(groupsUsed)) exceeds n_group (\(groupCount))") }
        if predictionLayers > fields.numLayers {
            problems.append(
                "num_nextn_predict_layers (\(predictionLayers)) exceeds num_hidden_layers (\(fields.numLayers))")
        }
        if let unsupportedQuantization {
            problems.append(
                "quantization_config \(unsupportedQuantization) is not implemented by moeckpt (fp8 with a weight_block_size is)")
        }
        return problems
    }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numRoutedExperts, expertsPerToken: expertsPerToken, expertIntermediate: moeIntermediateSize,
            router: RouterSemantics(
                scoring: scoring, renormalize: normTopKProb, scale: routedScalingFactor, selectionBias: true,
                groups: .init(count: groupCount, used: groupsUsed)))
        d.headDim = qkRopeHeadDim
        // transformers' yarn_apply_mscale: the softmax scale times mscale(factor, mscale_all_dim)^2.
        d.attentionScale = 1 / Double(qkNopeHeadDim + qkRopeHeadDim).squareRoot() * (fields.yarn?.attentionScaleFactor ?? 1)
        d.latentAttention = .init(
            qLoraRank: qLoraRank, kvLoraRank: kvLoraRank, qkNopeHeadDim: qkNopeHeadDim, qkRopeHeadDim: qkRopeHeadDim,
            vHeadDim: vHeadDim, ropeInterleave: ropeInterleave, bias: attentionBias)
        d.routerSelectionBias = true
        if numSharedExperts > 0 { d.sharedExpert = .init(intermediate: moeIntermediateSize * numSharedExperts, gated: false) }
        d.denseLayers = Array(0..<min(firstDenseLayers, fields.numLayers))
        d.denseIntermediate = intermediateSize
        return d
    }

    static func transformers(_ storage: TransformersNames.ExpertStorage) -> [LayoutEntry] {
        let attention = "model.layers.{bid}.self_attn."
        let latent = [
            ("q_a_proj.weight", "attn.q_a"), ("q_a_proj.bias", "attn.q_a_bias"), ("q_a_layernorm.weight", "attn.q_a_norm"),
            ("q_b_proj.weight", "attn.q_b"), ("kv_a_proj_with_mqa.weight", "attn.kv_a"), ("kv_a_proj_with_mqa.bias", "attn.kv_a_bias"),
            ("kv_a_layernorm.weight", "attn.kv_a_norm"), ("o_proj.bias", "attn.o_bias"),
        ].map { LayoutEntry(attention + $0.0, "layers.{bid}." + $0.1) }
        // Per head: its key rows (no rotary part), then its value rows.
        let kvB = LayoutEntry(attention + "kv_b_proj.weight", fusedPerHead: ["layers.{bid}.attn.k_b", "layers.{bid}.attn.v_b"])
        return TransformersNames.core + latent + [kvB] + TransformersNames.qwenExperts(storage)
            + [LayoutEntry("model.layers.{bid}.mlp.gate.e_score_correction_bias", "layers.{bid}.moe.router_bias")]
            + TransformersNames.gatedMLP("mlp.shared_experts", "moe.shared") + TransformersNames.gatedMLP("mlp", "mlp")
            + predictionLayer
    }

    /// A multi-token-prediction layer's own tensors (its decoder layer is named as the others).
    static let predictionLayer = [
        ("enorm.weight", "enorm"), ("hnorm.weight", "hnorm"), ("eh_proj.weight", "eh_proj"),
        ("shared_head.norm.weight", "head_norm"), ("embed_tokens.weight", "embed"), ("shared_head.head.weight", "head"),
    ].map { LayoutEntry("model.layers.{bid}." + $0.0, "layers.{bid}.mtp." + $0.1) }

    /// mlx-lm's `sanitize`: experts stacked under `switch_mlp`; kv_b_proj as per-head matrices,
    /// `embed_q` [heads, kv_lora, nope] (the key rows, transposed) and `unembed_out` [heads, v,
    /// kv_lora]; no multi-token-prediction layers.
    static let mlx =
        transformers(.mlx).filter { !$0.stored.template.contains("kv_b_proj") && !$0.canonical[0].template.contains(".mtp.") }
        + [
            LayoutEntry("model.layers.{bid}.self_attn.embed_q.weight", dealtColumns: ["layers.{bid}.attn.k_b"], transposed: true),
            LayoutEntry("model.layers.{bid}.self_attn.unembed_out.weight", "layers.{bid}.attn.v_b"),
        ]

    /// llama.cpp's `deepseek2`, as its converter (`DeepseekV2Model`) writes it: MLA as one key/value
    /// head of kv_lora + rope (the absorbed form), the per-head sizes in the `_mla` keys, sigmoid
    /// gating, the routed scale and renormalisation; no key for `rope_interleave` (llama.cpp
    /// rotates adjacent pairs, transformers' interleaved order).
    static let gguf = GGUFKeys(
        architecture: "deepseek2",
        rows: [
            ("leading_dense_block_count", "first_k_dense_replace", .count), ("attention.q_lora_rank", "q_lora_rank", .count),
            ("attention.kv_lora_rank", "kv_lora_rank", .count), ("rope.dimension_count", "qk_rope_head_dim", .count),
            ("attention.value_length_mla", "v_head_dim", .count),
            ("expert_feed_forward_length", "moe_intermediate_size", .count), ("expert_count", "n_routed_experts", .count),
            ("expert_shared_count", "n_shared_experts", .count), ("expert_weights_scale", "routed_scaling_factor", .number),
            ("expert_weights_norm", "norm_topk_prob", .flag), ("expert_group_count", "n_group", .count),
            ("expert_group_used_count", "topk_group", .count),
        ], fixed: [("rope_interleave", .bool(true)), ("attention_bias", .bool(false))], excluding: ["attention.head_count_kv"])

    var computedGGUFKeys: [String: String?] {
        var keys: [String: String?] = [
            "attention.head_count_kv": "1", "attention.key_length": String(kvLoraRank + qkRopeHeadDim),
            "attention.value_length": String(kvLoraRank), "attention.key_length_mla": String(qkNopeHeadDim + qkRopeHeadDim),
            "expert_gating_func": scoring == .sigmoid ? "2" : "1",  // llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_*
            "expert_weights_norm": normTopKProb ? "true" : nil,  // written only when set
        ]
        keys.merge(GGUFYaRN.keys(fields.yarn)) { _, new in new }
        if let all = fields.yarn?.mscaleAllDim { keys["rope.scaling.yarn_log_multiplier"] = GGUFYaRN.number(0.1 * all) }
        return keys
    }

    static func configMembers(fromGGUF metadata: [String: String]) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = []
        // MLA has as many key/value heads as heads; the head count of 1 describes the absorbed form.
        if let heads = gguf.value(metadata, "attention.head_count") { members.append(("num_key_value_heads", .number(heads))) }
        if let qk = gguf.value(metadata, "attention.key_length_mla").flatMap(Int.init),
            let rope = gguf.value(metadata, "rope.dimension_count").flatMap(Int.init)
        {
            members.append(("qk_nope_head_dim", .integer(qk - rope)))
            members.append(("head_dim", .integer(rope)))  // DeepseekV3Config's head_dim is qk_rope_head_dim
        }
        if gguf.value(metadata, "expert_weights_norm") == nil { members.append(("norm_topk_prob", .bool(false))) }
        // llama.cpp (src/models/deepseek2.cpp): without the key, softmax (DeepSeek-V2 files), but
        // sigmoid for GLM-4.7-Lite's shape.
        let glmLite = ["47", "48"].contains(gguf.value(metadata, "block_count")) && gguf.value(metadata, "vocab_size") == "154880"
        switch gguf.value(metadata, "expert_gating_func") {
        case "2": break
        case nil where glmLite: break
        case nil, "1": members.append(("scoring_func", .string("softmax")))
        case let other?: members.append(("scoring_func", .string("expert_gating_func \(other)")))
        }
        // llama.cpp takes mscale_all_dim from the log multiplier and mscale equal to it
        // (llama-context.cpp: for deepseek2, mscale = mscale_all_dims).
        let logMultiplier = gguf.value(metadata, "rope.scaling.yarn_log_multiplier").flatMap(Double.init)
        let mscales: [(String, JSONValue)] =
            logMultiplier.map { GGUFYaRN.number($0 / 0.1) }.map { [("mscale", .number($0)), ("mscale_all_dim", .number($0))] } ?? []
        return members + GGUFYaRN.members(metadata, gguf, extra: mscales)
    }

    /// llama.cpp's names (gguf-py's `deepseek2` table): kv_b_proj split as its converter does, the
    /// keys' part transposed (`attn_k_b` [heads, kv_lora, nope]); no multi-token-prediction layers.
    static let ggufNames: [LayoutEntry] = {
        var entries = GGUFNames.layout(interleavedRotary: false).entries.filter { !$0.stored.template.contains("attn_k.") }
        for (stored, canonical) in [
            ("attn_q_a.weight", "attn.q_a"), ("attn_q_a_norm.weight", "attn.q_a_norm"), ("attn_q_b.weight", "attn.q_b"),
            ("attn_kv_a_mqa.weight", "attn.kv_a"), ("attn_kv_a_norm.weight", "attn.kv_a_norm"), ("attn_v_b.weight", "attn.v_b"),
            ("exp_probs_b.bias", "moe.router_bias"), ("ffn_gate.weight", "mlp.gate"), ("ffn_up.weight", "mlp.up"),
            ("ffn_down.weight", "mlp.down"),
        ] {
            entries.append(LayoutEntry("blk.{bid}." + stored, "layers.{bid}." + canonical))
        }
        entries.append(LayoutEntry("blk.{bid}.attn_k_b.weight", dealtColumns: ["layers.{bid}.attn.k_b"], transposed: true))
        return entries
    }()

    /// What mlx-lm's or llama.cpp's DeepSeek-V3 cannot run as transformers does.
    public func unexpressible(in layout: LayoutKey) -> [String] {
        var lost: [String] = []
        let tool = layout == "gguf" ? "llama.cpp" : "mlx-lm"
        if scoring != .sigmoid, layout != "gguf" {
            lost.append("scoring_func \(scoring.rawValue) (transformers' and mlx-lm's DeepSeek-V3 route with sigmoid)")
        }
        switch layout {
        case "mlx":
            if numSharedExperts == 0 { lost.append("n_shared_experts 0 (mlx-lm builds a shared expert unless it is null)") }
        case "gguf":
            lost += GGUFNames.decoderLimits(decoder, hiddenAct: fields.hiddenAct, denseLayersAllowed: true)
            if attentionBias { lost.append("attention_bias true (llama.cpp's deepseek2 has no attention biases)") }
            if let yarn = fields.yarn {
                if yarn.mscaleAllDim == nil || yarn.mscale != yarn.mscaleAllDim || yarn.attentionFactor != nil {
                    lost.append("YaRN with mscale other than mscale_all_dim (llama.cpp's deepseek2 takes them equal, as released)")
                }
                if yarn.betaFast != 32 || yarn.betaSlow != 1 { lost.append("YaRN betas other than 32 and 1 (llama.cpp fixes them)") }
            }
        default: return lost
        }
        if !ropeInterleave { lost.append("rope_interleave false (\(tool) always rotates interleaved pairs)") }
        return lost
    }

    /// mlx-lm's router (`MoEGate`) is not a quantizable layer: it stays in float.
    public static let mlxQuantizationRules = MLXQuantizationRules(unquantized: ["mlp.gate"])

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers(.perExpert)),
        NamingLayout(key: "hf-fused", title: "transformers 5 fused experts", entries: transformers(.fused)),
        NamingLayout(key: "mlx", title: "mlx-lm (stacked experts, absorbed kv_b)", entries: mlx),
        NamingLayout(key: "gguf", title: "GGUF (llama.cpp)", entries: ggufNames, description: .ggufMetadata),
    ]
}
