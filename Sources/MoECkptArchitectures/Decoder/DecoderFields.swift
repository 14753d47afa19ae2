import MoECkptFormats
import MoECkptKernels
import MoECkptModels

/// The fields every transformers decoder config.json has, read with a family's defaults and
/// written back in the same keys.
public struct DecoderFields: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    /// Written only when the config had it (else hidden / heads).
    public var explicitHeadDim: Int?
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var hiddenAct: String
    /// YaRN's parameters, for the families that implement it (`allowsYaRN`).
    public var yarn: DecoderConfig.YaRN?

    public var headDim: Int { explicitHeadDim ?? (numHeads > 0 ? hiddenSize / numHeads : 0) }

    /// Reads them, leaving every problem in `f`; the RoPE must be the default one.
    public init(_ f: inout ConfigFields, epsDefault: Double, thetaDefault: Double = 10_000, allowsYaRN: Bool = false) {
        vocabSize = f.count("vocab_size")
        hiddenSize = f.count("hidden_size")
        numLayers = f.count("num_hidden_layers")
        numHeads = f.count("num_attention_heads")
        numKVHeads = f.optionalCount("num_key_value_heads") ?? numHeads
        explicitHeadDim = f.optionalCount("head_dim")
        rmsNormEps = f.optionalDouble("rms_norm_eps") ?? epsDefault
        let thetaKey = ["rope_parameters.rope_theta", "rope_theta"].first { f.value($0) != nil }
        ropeTheta = thetaKey.flatMap { f.optionalDouble($0) } ?? thetaDefault
        maxPositionEmbeddings = f.optionalCount("max_position_embeddings") ?? 4096
        tieWordEmbeddings = f.optionalBool("tie_word_embeddings") ?? false
        hiddenAct = f.optionalString("hidden_act") ?? "silu"
        let yarnPath = ["rope_parameters", "rope_scaling"].first { path in
            ["rope_type", "type"].contains { f.value(path + "." + $0) == .string("yarn") }
        }
        if allowsYaRN, let path = yarnPath {
            yarn = DecoderConfig.YaRN(
                factor: f.double(path + ".factor"), originalMaxPositions: f.count(path + ".original_max_position_embeddings"),
                betaFast: f.optionalDouble(path + ".beta_fast") ?? 32, betaSlow: f.optionalDouble(path + ".beta_slow") ?? 1,
                truncate: f.optionalBool(path + ".truncate") ?? true, attentionFactor: f.optionalDouble(path + ".attention_factor"),
                mscale: f.optionalDouble(path + ".mscale"), mscaleAllDim: f.optionalDouble(path + ".mscale_all_dim"))
        } else {
            f.requireDefaultRoPE(["rope_parameters", "rope_scaling"])
        }
    }

    /// The config.json members, `model_type` and `architectures` first.
    public func members(modelType: String, architecture: String) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)] = [
            ("architectures", .array([.string(architecture)])), ("model_type", .string(modelType)),
            ("vocab_size", .integer(vocabSize)), ("hidden_size", .integer(hiddenSize)),
            ("num_hidden_layers", .integer(numLayers)), ("num_attention_heads", .integer(numHeads)),
            ("num_key_value_heads", .integer(numKVHeads)),
        ]
        if let explicitHeadDim { members.append(("head_dim", .integer(explicitHeadDim))) }
        members += [
            ("hidden_act", .string(hiddenAct)), ("rms_norm_eps", .float(rmsNormEps)),
            // Both spellings: transformers 5 reads `rope_parameters`, mlx-lm and transformers 4.x `rope_theta`.
            ("rope_theta", .float(ropeTheta)),
            ("rope_parameters", .object(JSONObject(ropeParameters))),
        ]
        // mlx-lm reads YaRN only from 4.x's `rope_scaling`; transformers 5 folds it into the same parameters.
        if yarn != nil { members.append(("rope_scaling", .object(JSONObject(ropeParameters.filter { $0.0 != "rope_theta" })))) }
        members += [
            ("max_position_embeddings", .integer(maxPositionEmbeddings)), ("tie_word_embeddings", .bool(tieWordEmbeddings)),
        ]
        return members
    }

    var ropeParameters: [(String, JSONValue)] {
        guard let yarn else { return [("rope_theta", .float(ropeTheta)), ("rope_type", .string("default"))] }
        var members: [(String, JSONValue)] = [
            ("rope_theta", .float(ropeTheta)), ("rope_type", .string("yarn")), ("factor", .float(yarn.factor)),
            ("original_max_position_embeddings", .integer(yarn.originalMaxPositions)), ("beta_fast", .float(yarn.betaFast)),
            ("beta_slow", .float(yarn.betaSlow)), ("truncate", .bool(yarn.truncate)),
        ]
        for (key, value) in [("attention_factor", yarn.attentionFactor), ("mscale", yarn.mscale), ("mscale_all_dim", yarn.mscaleAllDim)] {
            if let value { members.append((key, .float(value))) }
        }
        return members
    }

    /// The decoder these fields make, before the family's switches.
    public func decoder(numExperts: Int, expertsPerToken: Int, expertIntermediate: Int, router: RouterSemantics) -> DecoderConfig {
        DecoderConfig(
            vocabSize: vocabSize, hiddenSize: hiddenSize, numLayers: numLayers, numHeads: numHeads, numKVHeads: numKVHeads,
            headDim: headDim, rmsNormEps: rmsNormEps, ropeTheta: ropeTheta, slidingWindow: nil,
            tieWordEmbeddings: tieWordEmbeddings, activation: GatedActivation(hiddenAct: hiddenAct) ?? .silu,
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: expertIntermediate, router: router,
            yarn: yarn)
    }

    /// The activation, when moeckpt does not implement it.
    public var activationProblems: [String] {
        GatedActivation(hiddenAct: hiddenAct) == nil
            ? ["hidden_act \"\(hiddenAct)\" is not implemented by moeckpt (silu, gelu, gelu_pytorch_tanh, gelu_new, relu are)"] : []
    }
}

/// The names transformers gives a decoder's attention, norms and embeddings (Llama's, shared by
/// Mixtral, Qwen-MoE, OLMoE, GraniteMoE and mlx-lm), with the optional biases and q/k norms.
enum TransformersNames {
    /// Llama's: embeddings, norms, the four projections.
    static let core: [LayoutEntry] = [
        LayoutEntry("model.embed_tokens.weight", "embed"),
        LayoutEntry("model.norm.weight", "final_norm"),
        LayoutEntry("lm_head.weight", "lm_head"),
        LayoutEntry("model.layers.{bid}.input_layernorm.weight", "layers.{bid}.attn_norm"),
        LayoutEntry("model.layers.{bid}.post_attention_layernorm.weight", "layers.{bid}.ffn_norm"),
        LayoutEntry("model.layers.{bid}.self_attn.q_proj.weight", "layers.{bid}.attn.q"),
        LayoutEntry("model.layers.{bid}.self_attn.k_proj.weight", "layers.{bid}.attn.k"),
        LayoutEntry("model.layers.{bid}.self_attn.v_proj.weight", "layers.{bid}.attn.v"),
        LayoutEntry("model.layers.{bid}.self_attn.o_proj.weight", "layers.{bid}.attn.o"),
    ]

    /// `core`, and the biases and query/key norms some families add.
    static let attention: [LayoutEntry] =
        core + [
            LayoutEntry("model.layers.{bid}.self_attn.q_proj.bias", "layers.{bid}.attn.q_bias"),
            LayoutEntry("model.layers.{bid}.self_attn.k_proj.bias", "layers.{bid}.attn.k_bias"),
            LayoutEntry("model.layers.{bid}.self_attn.v_proj.bias", "layers.{bid}.attn.v_bias"),
            LayoutEntry("model.layers.{bid}.self_attn.o_proj.bias", "layers.{bid}.attn.o_bias"),
            LayoutEntry("model.layers.{bid}.self_attn.q_norm.weight", "layers.{bid}.attn.q_norm"),
            LayoutEntry("model.layers.{bid}.self_attn.k_norm.weight", "layers.{bid}.attn.k_norm"),
        ]

    /// `mlp.{gate,up,down}_proj` under `prefix`: a dense layer's MLP, or a shared expert's.
    static func gatedMLP(_ prefix: String, _ canonical: String) -> [LayoutEntry] {
        ["gate", "up", "down"].map { LayoutEntry("model.layers.{bid}.\(prefix).\($0)_proj.weight", "layers.{bid}.\(canonical).\($0)") }
    }

    /// How a family's experts are stored.
    enum ExpertStorage {
        /// One module per expert (`save_pretrained`'s default).
        case perExpert
        /// transformers 5's fused tensors (`save_pretrained(save_original_format=False)`).
        case fused
        /// mlx-lm's `sanitize`: stacked per projection under `switch_mlp`.
        case mlx
    }

    /// Qwen-style experts under `mlp.`: router `gate`, then the experts as `storage` says.
    static func qwenExperts(_ storage: ExpertStorage) -> [LayoutEntry] {
        var rows = [LayoutEntry("model.layers.{bid}.mlp.gate.weight", "layers.{bid}.moe.router")]
        switch storage {
        case .mlx:
            rows += ["gate", "up", "down"].map {
                LayoutEntry("model.layers.{bid}.mlp.switch_mlp.\($0)_proj.weight", "layers.{bid}.moe.\($0)")
            }
        case .fused:
            rows += [
                LayoutEntry("model.layers.{bid}.mlp.experts.gate_up_proj", fused: ["layers.{bid}.moe.gate", "layers.{bid}.moe.up"]),
                LayoutEntry("model.layers.{bid}.mlp.experts.down_proj", "layers.{bid}.moe.down"),
            ]
        case .perExpert:
            rows += ["gate", "up", "down"].map {
                LayoutEntry("model.layers.{bid}.mlp.experts.{xid}.\($0)_proj.weight", "layers.{bid}.moe.\($0)", .perExpert)
            }
        }
        return rows
    }
}
