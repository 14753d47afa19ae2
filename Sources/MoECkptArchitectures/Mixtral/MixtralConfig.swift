import MoECkptFormats
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// The hyperparameters of a Mixtral causal LM, whichever file they came from: transformers'
/// config.json (4.x and 5.x), Mistral's params.json, llama.cpp's GGUF keys.
public struct MixtralConfig: DecoderArchitecture {
    public static let modelType = "mixtral"

    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var numExperts: Int
    public var expertsPerToken: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// Key j is visible to query i only when i - slidingWindow < j <= i.
    public var slidingWindow: Int?
    public var tieWordEmbeddings: Bool
    public var maxPositionEmbeddings: Int
    public var hiddenAct: String

    /// Problems no checkpoint of this config can avoid: the decoder's, and an activation moeckpt
    /// does not implement.
    public var inconsistencies: [String] {
        var problems = decoder.inconsistencies
        if GatedActivation(hiddenAct: hiddenAct) == nil {
            problems.append("hidden_act \"\(hiddenAct)\" is not implemented by moeckpt (silu, gelu, gelu_pytorch_tanh, gelu_new, relu are)")
        }
        return problems
    }

    public init(
        vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int,
        headDim: Int, numExperts: Int, expertsPerToken: Int, rmsNormEps: Double, ropeTheta: Double,
        slidingWindow: Int?, tieWordEmbeddings: Bool, maxPositionEmbeddings: Int, hiddenAct: String
    ) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.numExperts = numExperts
        self.expertsPerToken = expertsPerToken
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.slidingWindow = slidingWindow
        self.tieWordEmbeddings = tieWordEmbeddings
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.hiddenAct = hiddenAct
    }

    /// Where each field lives in one kind of description file: a table, one row per source.
    struct Keys {
        let hidden, heads, vocab, intermediate, layers, experts, perToken, kvHeads, headDim, eps: String
        /// Candidates in order (transformers 5 nests rope_theta, 4.x does not).
        let theta: [String]
        let sliding, tied, maxPositions: String
        let activation: String?

        static let huggingFace = Keys(
            hidden: "hidden_size", heads: "num_attention_heads", vocab: "vocab_size", intermediate: "intermediate_size",
            layers: "num_hidden_layers", experts: "num_local_experts", perToken: "num_experts_per_tok",
            kvHeads: "num_key_value_heads", headDim: "head_dim", eps: "rms_norm_eps",
            theta: ["rope_parameters.rope_theta", "rope_theta"], sliding: "sliding_window", tied: "tie_word_embeddings",
            maxPositions: "max_position_embeddings", activation: "hidden_act")
        static let mistral = Keys(
            hidden: "dim", heads: "n_heads", vocab: "vocab_size", intermediate: "hidden_dim", layers: "n_layers",
            experts: "moe.num_experts", perToken: "moe.num_experts_per_tok", kvHeads: "n_kv_heads", headDim: "head_dim",
            eps: "norm_eps", theta: ["rope_theta"], sliding: "sliding_window", tied: "tied_embeddings",
            maxPositions: "max_seq_len", activation: nil)
    }

    /// transformers' config.json, 4.x (`rope_theta` at the top) or 5.x (`rope_parameters`).
    public init(configJSON fields: inout ConfigFields) {
        self.init(&fields, keys: .huggingFace)
    }

    public init(huggingFace object: JSONObject) throws(ModelConfigError) {
        var fields = ConfigFields(object)
        self.init(&fields, keys: .huggingFace)
        try fields.check()
    }

    /// Mistral's params.json (`dim`, `n_layers`, ..., `moe: {num_experts, num_experts_per_tok}`).
    public init(mistralParams object: JSONObject) throws(ModelConfigError) {
        var fields = ConfigFields(object)
        self.init(&fields, keys: .mistral)
        try fields.check()
    }

    init(_ f: inout ConfigFields, keys: Keys) {
        hiddenSize = f.count(keys.hidden)
        numHeads = f.count(keys.heads)
        vocabSize = f.count(keys.vocab)
        intermediateSize = f.count(keys.intermediate)
        numLayers = f.count(keys.layers)
        numExperts = f.count(keys.experts)
        expertsPerToken = f.count(keys.perToken)
        numKVHeads = f.optionalCount(keys.kvHeads) ?? numHeads
        headDim = f.optionalCount(keys.headDim) ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
        rmsNormEps = f.optionalDouble(keys.eps) ?? 1e-5
        let thetaKey = keys.theta.first { f.value($0) != nil }
        ropeTheta = thetaKey.flatMap { f.optionalDouble($0) } ?? 1e6
        slidingWindow = f.optionalCount(keys.sliding)
        tieWordEmbeddings = f.optionalBool(keys.tied) ?? false
        maxPositionEmbeddings = f.optionalCount(keys.maxPositions) ?? 4096 * 32
        hiddenAct = keys.activation.flatMap { f.optionalString($0) } ?? "silu"
        f.requireDefaultRoPE(["rope_parameters", "rope_scaling"])
    }

    /// params.json, or llama.cpp's keys (architecture `llama`; tied embeddings when the
    /// checkpoint has no output tensor).
    public static func read(_ description: OtherDescription) throws(ModelConfigError) -> MixtralConfig? {
        switch description {
        case .mistralParams(let object):
            return try MixtralConfig(mistralParams: object)
        case .ggufMetadata(let metadata, let hasOutputTensor):
            guard metadata["general.architecture"] == "llama" else { return nil }
            var config = try MixtralConfig(ggufMetadata: metadata)
            config.tieWordEmbeddings = !hasOutputTensor
            return config
        }
    }

    /// The key/values llama.cpp's converter writes for Mixtral (architecture `llama`), as strings
    /// in a safetensors `__metadata__`.
    public init(ggufMetadata metadata: [String: String]) throws(ModelConfigError) {
        var problems: [String] = []
        func int(_ key: String) -> Int? {
            guard let text = metadata[key] else { return nil }
            guard let value = Int(text), value > 0, value <= ConfigFields.largestCount else {
                problems.append("\(key) must be a positive integer of at most \(ConfigFields.largestCount)")
                return nil
            }
            return value
        }
        func required(_ key: String) -> Int {
            guard let value = int(key) else {
                if metadata[key] == nil { problems.append("\(key) is missing") }
                return 0
            }
            return value
        }
        func double(_ key: String) -> Double? {
            guard let text = metadata[key] else { return nil }
            guard let value = Double(text) else { problems.append("\(key) must be a number"); return nil }
            return value
        }
        hiddenSize = required("llama.embedding_length")
        numLayers = required("llama.block_count")
        numHeads = required("llama.attention.head_count")
        intermediateSize = required("llama.feed_forward_length")
        vocabSize = required("llama.vocab_size")
        numExperts = required("llama.expert_count")
        expertsPerToken = required("llama.expert_used_count")
        numKVHeads = int("llama.attention.head_count_kv") ?? numHeads
        headDim = int("llama.rope.dimension_count") ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
        rmsNormEps = double("llama.attention.layer_norm_rms_epsilon") ?? 1e-5
        ropeTheta = double("llama.rope.freq_base") ?? 1e6
        slidingWindow = int("llama.attention.sliding_window")
        tieWordEmbeddings = false  // decided by the presence of output.weight when loading
        maxPositionEmbeddings = int("llama.context_length") ?? 4096 * 32
        hiddenAct = "silu"
        if let scaling = metadata["llama.rope.scaling.type"], scaling != "none" {
            problems.append("llama.rope.scaling.type \"\(scaling)\" is not implemented by moeckpt (only the default RoPE)")
        }
        if !problems.isEmpty { throw .problems(problems) }
    }

    /// llama.cpp's keys (`general.*`, `llama.*`) are a description of their own, dropped when the
    /// tensors are written in another layout.
    public static func isDescriptionKey(_ key: String) -> Bool { key.hasPrefix("general.") || key.hasPrefix("llama.") }

    public var configJSON: JSONObject {
        JSONObject([
            ("architectures", .array([.string("MixtralForCausalLM")])),
            ("model_type", .string(Self.modelType)),
            ("vocab_size", .integer(vocabSize)),
            ("hidden_size", .integer(hiddenSize)),
            ("intermediate_size", .integer(intermediateSize)),
            ("num_hidden_layers", .integer(numLayers)),
            ("num_attention_heads", .integer(numHeads)),
            ("num_key_value_heads", .integer(numKVHeads)),
            ("head_dim", .integer(headDim)),
            ("num_local_experts", .integer(numExperts)),
            ("num_experts_per_tok", .integer(expertsPerToken)),
            ("hidden_act", .string(hiddenAct)),
            ("rms_norm_eps", .float(rmsNormEps)),
            ("rope_theta", .float(ropeTheta)),
            ("sliding_window", .integer(slidingWindow)),
            ("max_position_embeddings", .integer(maxPositionEmbeddings)),
            ("tie_word_embeddings", .bool(tieWordEmbeddings)),
        ])
    }

    public var mistralParams: JSONObject {
        var members: [(String, JSONValue)] = [
            ("dim", .integer(hiddenSize)), ("n_layers", .integer(numLayers)), ("head_dim", .integer(headDim)),
            ("hidden_dim", .integer(intermediateSize)), ("n_heads", .integer(numHeads)), ("n_kv_heads", .integer(numKVHeads)),
            ("norm_eps", .float(rmsNormEps)), ("vocab_size", .integer(vocabSize)), ("rope_theta", .float(ropeTheta)),
        ]
        if let slidingWindow { members.append(("sliding_window", .integer(slidingWindow))) }
        // No tied_embeddings: mistral-inference ignores it, so a tied model's head is written as
        // output.weight (NamingLayout.writesTiedHead) and the file is untied.
        // Not read by Mistral's tools; keeps max_position_embeddings through a round trip.
        members.append(("max_seq_len", .integer(maxPositionEmbeddings)))
        members.append(
            (
                "moe",
                .object(
                    JSONObject([
                        ("num_experts", .integer(numExperts)),
                        ("num_experts_per_tok", .integer(expertsPerToken)),
                    ]))
            ))
        return JSONObject(members)
    }

    public func description(_ file: DescriptionFile) -> WrittenDescription? {
        switch file {
        case .configJSON: nil
        case .mistralParams: .text(JSONValue.object(mistralParams).serialized(.memberPerLine) + "\n")
        case .ggufMetadata: .metadata(ggufMetadata)
        }
    }

    public var ggufMetadata: [String: String] {
        var metadata = [
            "general.architecture": "llama",
            "llama.block_count": String(numLayers),
            "llama.context_length": String(maxPositionEmbeddings),
            "llama.embedding_length": String(hiddenSize),
            "llama.feed_forward_length": String(intermediateSize),
            "llama.attention.head_count": String(numHeads),
            "llama.attention.head_count_kv": String(numKVHeads),
            "llama.rope.freq_base": JSONText.pythonFloat(ropeTheta),
            "llama.attention.layer_norm_rms_epsilon": "\(rmsNormEps)",
            "llama.expert_count": String(numExperts),
            "llama.expert_used_count": String(expertsPerToken),
            "llama.rope.dimension_count": String(headDim),
            "llama.vocab_size": String(vocabSize),
        ]
        if let slidingWindow { metadata["llama.attention.sliding_window"] = String(slidingWindow) }
        return metadata
    }
}

extension MixtralConfig {
    public static let externalLayouts = MixtralLayouts.all

    /// Mistral's params.json has no activation and llama.cpp runs Mixtral's experts with SiLU:
    /// another activation would be lost there.
    public func unexpressible(in layout: LayoutKey) -> [String] {
        var lost: [String] = []
        if layout == "mistral" || layout == "gguf", GatedActivation(hiddenAct: hiddenAct) != .silu {
            lost.append(
                "hidden_act \(hiddenAct) (\(layout == "gguf" ? "llama.cpp runs Mixtral's experts with SiLU" : "params.json has no activation; Mistral's code uses SiLU"))"
            )
        }
        // mlx-lm's Mixtral (models/mixtral.py) takes head_dim = hidden_size / heads and has no window.
        if layout == "mlx", headDim * numHeads != hiddenSize {
            lost.append("head_dim \(headDim) (mlx-lm's Mixtral uses hidden_size / num_attention_heads = \(hiddenSize / numHeads))")
        }
        if layout == "mlx", let slidingWindow {
            lost.append("sliding_window \(slidingWindow) (mlx-lm's Mixtral attends to every earlier token)")
        }
        return lost
    }

    /// The decoder Mixtral is: softmax router over every expert, top-k, renormalised.
    public var decoder: DecoderConfig {
        DecoderConfig(
            vocabSize: vocabSize, hiddenSize: hiddenSize, numLayers: numLayers, numHeads: numHeads, numKVHeads: numKVHeads,
            headDim: headDim, rmsNormEps: rmsNormEps, ropeTheta: ropeTheta, slidingWindow: slidingWindow,
            tieWordEmbeddings: tieWordEmbeddings, activation: GatedActivation(hiddenAct: hiddenAct) ?? .silu,
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: intermediateSize, router: .mixtral)
    }
}
