import MoECkptFormats
import MoECkptModels

/// gpt-oss (`GptOssForCausalLM`): q/k/v/o biases and a learned sink per head in each attention
/// softmax; `layer_types` alternating sliding-window and full attention; YaRN rotary; a router
/// with a bias, top-k of the logits and softmax over those k; experts with biases, stored
/// transposed with gate and up columns interleaved, through the clamped SwiGLU.
public struct GptOssConfig: GGUFDescribed {
    public static let modelType = "gpt_oss"
    public var fields: DecoderFields
    public var intermediateSize, numExperts, expertsPerToken, slidingWindow: Int
    public var layerTypes: [String]
    public var attentionBias: Bool
    public var swigluLimit, swigluAlpha, routerAuxLossCoef: Double
    /// `quantization_config.quant_method`: `mxfp4` as released (experts dequantized when loaded).
    public var quantization: String?

    /// Its rotary embedding when the config names none (transformers' default for the family).
    static let defaultYaRN = DecoderConfig.YaRN(
        factor: 32, originalMaxPositions: 4096, betaFast: 32, betaSlow: 1, truncate: false, attentionFactor: nil, mscale: nil,
        mscaleAllDim: nil)

    public init(configJSON f: inout ConfigFields) {
        let hasRoPE = f.value("rope_parameters") != nil || f.value("rope_scaling") != nil
        fields = DecoderFields(&f, epsDefault: 1e-5, thetaDefault: 150_000, allowsYaRN: true)
        if !hasRoPE { fields.yarn = Self.defaultYaRN }
        intermediateSize = f.count("intermediate_size")
        numExperts = f.count(anyOf: ["num_local_experts", "num_experts"])
        expertsPerToken = f.count(anyOf: ["num_experts_per_tok", "experts_per_token"])
        slidingWindow = f.optionalCount("sliding_window") ?? 128
        let layers = fields.numLayers
        layerTypes =
            f.optionalStrings("layer_types")
            ?? (0..<min(layers, ConfigFields.largestCount)).map {
                ($0 + 1) % 2 == 1 ? "sliding_attention" : "full_attention"
            }
        attentionBias = f.optionalBool("attention_bias") ?? true
        swigluLimit = f.optionalDouble("swiglu_limit") ?? 7
        swigluAlpha = f.optionalDouble("swiglu_alpha") ?? 1.702
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.001
        quantization = f.optionalString("quantization_config.quant_method")
    }

    public func prepare(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        quantization == "mxfp4" ? MXFP4Weights.dequantize(stored) : (stored, [])
    }

    /// The released MXFP4 experts as the kernels read them: `gate_up_proj`'s even rows the gate,
    /// its odd rows up (its blocks are [E, 2I, H / 32, 16], out by in), `down_proj` as it is.
    public func quantizedWeights(_ stored: [NamedTensor]) -> [String: QuantizedWeight] {
        guard quantization == "mxfp4" else { return [:] }
        var weights: [String: QuantizedWeight] = [:]
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for l in 0..<fields.numLayers {
            let (experts, canonical) = ("model.layers.\(l).mlp.experts.", "layers.\(l).moe.")
            let parts = [
                ("gate", MXFP4Weights.packed(experts + "gate_up_proj", in: byName, firstRow: 0, rowStep: 2)),
                ("up", MXFP4Weights.packed(experts + "gate_up_proj", in: byName, firstRow: 1, rowStep: 2)),
                ("down", MXFP4Weights.packed(experts + "down_proj", in: byName)),
            ]
            for (projection, weight) in parts { weights[canonical + projection] = weight }
        }
        return weights
    }

    public var configJSON: JSONObject {
        JSONObject(
            fields.members(modelType: Self.modelType, architecture: "GptOssForCausalLM") + [
                ("intermediate_size", .integer(intermediateSize)), ("num_local_experts", .integer(numExperts)),
                ("num_experts_per_tok", .integer(expertsPerToken)), ("sliding_window", .integer(slidingWindow)),
                ("layer_types", .array(layerTypes.map { .string($0) })), ("attention_bias", .bool(attentionBias)),
                ("swiglu_limit", .float(swigluLimit)), ("swiglu_alpha", .float(swigluAlpha)),
                ("router_aux_loss_coef", .float(routerAuxLossCoef)),
            ])
    }

    public var inconsistencies: [String] {
        var problems = decoder.inconsistencies
        if layerTypes.count != fields.numLayers {
            problems.append("layer_types has \(layerTypes.count) entries for \(fields.numLayers) layers")
        }
        if let quantization, quantization != "mxfp4" {
            problems.append("quantization_config \(quantization) is not implemented by moeckpt (mxfp4 is)")
        }
        if let other = layerTypes.first(where: { $0 != "sliding_attention" && $0 != "full_attention" }) {
            problems.append("layer_types \"\(other)\" is not sliding_attention or full_attention")
        }
        return problems
    }

    public var decoder: DecoderConfig {
        var d = fields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: intermediateSize,
            router: .softmaxOfTopKLogits)
        d.attentionBias = attentionBias
        d.attentionOutputBias = attentionBias
        d.attentionSinks = true
        d.slidingWindow = slidingWindow
        d.slidingLayers = layerTypes.indices.filter { layerTypes[$0] == "sliding_attention" }
        d.routerLogitBias = true
        d.expertBiases = true
        d.clampedSwiGLU = .init(limit: Float(swigluLimit), alpha: Float(swigluAlpha))
        return d
    }

    static let transformers: [LayoutEntry] =
        TransformersNames.attention + [
            LayoutEntry("model.layers.{bid}.self_attn.sinks", "layers.{bid}.attn.sinks"),
            LayoutEntry("model.layers.{bid}.mlp.router.weight", "layers.{bid}.moe.router"),
            LayoutEntry("model.layers.{bid}.mlp.router.bias", "layers.{bid}.moe.router_logit_bias"),
            // Stored for x @ W ([E, in, out]) with gate and up columns interleaved.
            LayoutEntry(
                "model.layers.{bid}.mlp.experts.gate_up_proj", dealtColumns: ["layers.{bid}.moe.gate", "layers.{bid}.moe.up"],
                transposed: true),
            LayoutEntry(
                "model.layers.{bid}.mlp.experts.gate_up_proj_bias",
                dealtColumns: ["layers.{bid}.moe.gate_bias", "layers.{bid}.moe.up_bias"], transposed: false),
            LayoutEntry("model.layers.{bid}.mlp.experts.down_proj", dealtColumns: ["layers.{bid}.moe.down"], transposed: true),
            LayoutEntry("model.layers.{bid}.mlp.experts.down_proj_bias", "layers.{bid}.moe.down_bias"),
        ]

    /// mlx-lm's `sanitize`d names: the experts' gate and up apart, [E, out, in], with biases.
    static let mlx: [LayoutEntry] =
        transformers.filter { !$0.stored.template.contains("mlp.experts.") }
        + ["gate", "up", "down"].flatMap { projection in
            [
                LayoutEntry("model.layers.{bid}.mlp.experts.\(projection)_proj.weight", "layers.{bid}.moe.\(projection)"),
                LayoutEntry("model.layers.{bid}.mlp.experts.\(projection)_proj.bias", "layers.{bid}.moe.\(projection)_bias"),
            ]
        }

    /// llama.cpp's `gpt-oss` keys, as its converter (`GptOssModel`) writes them; the rest it fixes:
    /// attention biases, even layers sliding, the clamped SwiGLU's constants.
    static let gguf = GGUFKeys(
        architecture: "gpt-oss",
        rows: [
            ("expert_feed_forward_length", "intermediate_size", .count), ("expert_count", "num_local_experts", .count),
            ("attention.sliding_window", "sliding_window", .count), ("attention.key_length", "head_dim", .count),
        ], fixed: [("attention_bias", .bool(true))])

    var computedGGUFKeys: [String: String?] {
        var keys = GGUFYaRN.keys(fields.yarn)
        keys["attention.value_length"] = fields.explicitHeadDim.map(String.init)
        return keys
    }

    static func configMembers(fromGGUF metadata: [String: String]) -> [(String, JSONValue)] {
        let layers = gguf.value(metadata, "block_count").flatMap(Int.init).map { min($0, ConfigFields.largestCount) } ?? 0
        return [("layer_types", .array(llamaCppLayerTypes(layers).map { .string($0) }))] + GGUFYaRN.members(metadata, gguf)
    }

    /// llama.cpp's pattern: even layers sliding, odd ones full (transformers' default too).
    static func llamaCppLayerTypes(_ layers: Int) -> [String] {
        (0..<layers).map { $0 % 2 == 0 ? "sliding_attention" : "full_attention" }
    }

    /// llama.cpp's names (gguf-py's `gpt-oss` table): the norm after attention is
    /// `post_attention_norm`; the sinks, router bias and expert biases have names of their own.
    static let ggufNames: [LayoutEntry] =
        GGUFNames.layout(interleavedRotary: false).entries.filter { !$0.stored.template.contains("ffn_norm") } + [
            LayoutEntry("blk.{bid}.post_attention_norm.weight", "layers.{bid}.ffn_norm"),
            LayoutEntry("blk.{bid}.attn_sinks.weight", "layers.{bid}.attn.sinks"),
            LayoutEntry("blk.{bid}.ffn_gate_inp.bias", "layers.{bid}.moe.router_logit_bias"),
        ]
        + ["gate", "up", "down"].map { LayoutEntry("blk.{bid}.ffn_\($0)_exps.bias", "layers.{bid}.moe.\($0)_bias") }

    /// What mlx-lm's or llama.cpp's gpt-oss cannot run as transformers does.
    public func unexpressible(in layout: LayoutKey) -> [String] {
        guard layout == "mlx" || layout == "gguf" else { return [] }
        let tool = layout == "gguf" ? "llama.cpp" : "mlx-lm"
        var lost: [String] = []
        if let yarn = fields.yarn {
            if !yarn.truncate { lost.append("YaRN with truncate false (\(tool)'s YaRN always rounds the correction range)") }
            if layout == "gguf", yarn.attentionFactor != nil || yarn.mscale != nil || yarn.mscaleAllDim != nil {
                lost.append("YaRN attention_factor, mscale or mscale_all_dim (llama.cpp's gpt-oss takes the default scale)")
            }
            if layout == "gguf", yarn.betaFast != 32 || yarn.betaSlow != 1 {
                lost.append("YaRN betas other than 32 and 1 (llama.cpp fixes them)")
            }
        }
        if !attentionBias { lost.append("attention_bias false (\(tool)'s gpt-oss always has attention biases)") }
        if swigluLimit != 7 || swigluAlpha != 1.702 {
            lost.append("swiglu_limit \(swigluLimit), swiglu_alpha \(swigluAlpha) (\(tool)'s gpt-oss fixes 7.0 and 1.702)")
        }
        if layout == "gguf" {
            if layerTypes != Self.llamaCppLayerTypes(fields.numLayers) {
                lost.append("layer_types other than sliding on even layers (llama.cpp's pattern)")
            }
            if fields.tieWordEmbeddings { lost.append("tie_word_embeddings true (llama.cpp's gpt-oss needs an output tensor)") }
        }
        return lost
    }

    /// mlx-lm's `quant_predicate` (models/gpt_oss.py): the router at 8 bits.
    public static let mlxQuantizationRules = MLXQuantizationRules(overrides: [("router", 8, 64)])

    public static let externalLayouts = [
        NamingLayout(key: "hf", title: "Hugging Face", entries: transformers),
        NamingLayout(key: "mlx", title: "mlx-lm (experts' gate and up apart)", entries: mlx),
        NamingLayout(key: "gguf", title: "GGUF (llama.cpp)", entries: ggufNames, description: .ggufMetadata),
    ]
}
