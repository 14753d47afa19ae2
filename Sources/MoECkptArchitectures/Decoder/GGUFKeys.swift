import MoECkptFormats
import MoECkptModels

/// llama.cpp's description of a decoder family, as a table from GGUF keys to config.json keys
/// (gguf-py's `Keys`, the values its converter `convert_hf_to_gguf.py` writes), with the settings
/// the architecture fixes instead of writing them. A GGUF-named checkpoint carries these as
/// strings in its safetensors `__metadata__`; a config.json object is built from them and read by
/// the family's own `init(configJSON:)`.
struct GGUFKeys: Sendable {
    enum Kind: Sendable {
        case count, number, flag
    }

    /// `general.architecture`, and the prefix of the other keys.
    let architecture: String
    /// (key after `{architecture}.`, config.json key, kind).
    let rows: [(gguf: String, json: String, kind: Kind)]
    /// config.json members the architecture fixes (llama.cpp hard-codes them).
    let fixed: [(String, JSONValue)]

    /// The keys every llama.cpp decoder has.
    static let common: [(gguf: String, json: String, kind: Kind)] = [
        ("block_count", "num_hidden_layers", .count), ("context_length", "max_position_embeddings", .count),
        ("embedding_length", "hidden_size", .count), ("feed_forward_length", "intermediate_size", .count),
        ("attention.head_count", "num_attention_heads", .count), ("attention.head_count_kv", "num_key_value_heads", .count),
        ("rope.freq_base", "rope_theta", .number), ("attention.layer_norm_rms_epsilon", "rms_norm_eps", .number),
        ("vocab_size", "vocab_size", .count), ("expert_used_count", "num_experts_per_tok", .count),
    ]

    /// `excluding`: common keys the architecture writes otherwise (DeepSeek's head_count_kv).
    init(
        architecture: String, rows: [(gguf: String, json: String, kind: Kind)], fixed: [(String, JSONValue)] = [],
        excluding: Set<String> = []
    ) {
        self.architecture = architecture
        self.rows = Self.common.filter { !excluding.contains($0.gguf) } + rows
        self.fixed = fixed
    }

    /// The value of `{architecture}.key`.
    func value(_ metadata: [String: String], _ key: String) -> String? { metadata[architecture + "." + key] }

    func isKey(_ key: String) -> Bool { key == "general.architecture" || key.hasPrefix(architecture + ".") }

    /// The metadata for a config.json object (members it lacks are left out).
    func metadata(_ config: JSONObject) -> [String: String] {
        var metadata = ["general.architecture": architecture]
        for row in rows {
            switch config[row.json] {
            case .number(let text)?: metadata[architecture + "." + row.gguf] = text
            case .bool(let flag)?: metadata[architecture + "." + row.gguf] = flag ? "true" : "false"
            default: break
            }
        }
        return metadata
    }

    /// The family's configuration from llama.cpp's keys, read by its own config.json reader (nil
    /// when the metadata describes another architecture).
    func read<A: GGUFDescribed>(_ description: OtherDescription, as type: A.Type) throws(ModelConfigError) -> A? {
        guard case .ggufMetadata(let metadata, let hasOutputTensor) = description,
            var object = configJSON(metadata, modelType: A.modelType, hasOutputTensor: hasOutputTensor)
        else { return nil }
        let derived = A.configMembers(fromGGUF: metadata)
        let replaced = Set(derived.map(\.0))
        object = JSONObject(object.entries.filter { !replaced.contains($0.0) }.map { ($0.0, $0.1) } + derived)
        var fields = ConfigFields(object)
        let config = A(configJSON: &fields)
        try fields.check()
        return config
    }

    /// A config.json object from the metadata, or nil when it describes another architecture.
    func configJSON(_ metadata: [String: String], modelType: String, hasOutputTensor: Bool) -> JSONObject? {
        guard metadata["general.architecture"] == architecture else { return nil }
        var members: [(String, JSONValue)] = [("model_type", .string(modelType))]
        for row in rows {
            guard let text = metadata[architecture + "." + row.gguf] else { continue }
            switch row.kind {
            case .count, .number: members.append((row.json, .number(text)))
            case .flag: members.append((row.json, text == "true" ? .bool(true) : text == "false" ? .bool(false) : .string(text)))
            }
        }
        return JSONObject(members + fixed + [("tie_word_embeddings", .bool(!hasOutputTensor))])
    }
}

/// A family described by llama.cpp's keys: reading them and writing them, from its `GGUFKeys`,
/// plus the keys that are not one config.json field each (computed both ways).
protocol GGUFDescribed: DecoderArchitecture {
    static var gguf: GGUFKeys { get }
    /// Keys computed from several fields, written over the table's (`nil` removes one).
    var computedGGUFKeys: [String: String?] { get }
    /// config.json members computed from several keys, replacing the table's.
    static func configMembers(fromGGUF metadata: [String: String]) -> [(String, JSONValue)]
}

extension GGUFDescribed {
    public static func read(_ description: OtherDescription) throws(ModelConfigError) -> Self? {
        try gguf.read(description, as: Self.self)
    }

    public static func isDescriptionKey(_ key: String) -> Bool { gguf.isKey(key) }

    public func description(_ file: DescriptionFile) -> WrittenDescription? {
        guard file == .ggufMetadata else { return nil }
        var metadata = Self.gguf.metadata(configJSON)
        for (key, value) in computedGGUFKeys { metadata[Self.gguf.architecture + "." + key] = value }
        return .metadata(metadata)
    }

    var computedGGUFKeys: [String: String?] { [:] }
    static func configMembers(fromGGUF metadata: [String: String]) -> [(String, JSONValue)] { [] }
}

/// llama.cpp's YaRN keys, as its converter writes them from `rope_parameters`, and back.
enum GGUFYaRN {
    static func keys(_ yarn: DecoderConfig.YaRN?) -> [String: String?] {
        guard let yarn else { return [:] }
        return [
            "rope.scaling.type": "yarn", "rope.scaling.factor": number(yarn.factor),
            "rope.scaling.original_context_length": String(yarn.originalMaxPositions),
            "rope.scaling.yarn_beta_fast": number(yarn.betaFast), "rope.scaling.yarn_beta_slow": number(yarn.betaSlow),
        ]
    }

    /// `rope_scaling` from the keys (none without `rope.scaling.type` yarn); `extra` adds
    /// family members (DeepSeek's mscales).
    static func members(_ metadata: [String: String], _ gguf: GGUFKeys, extra: [(String, JSONValue)] = []) -> [(String, JSONValue)] {
        guard gguf.value(metadata, "rope.scaling.type") == "yarn" else { return [] }
        var members: [(String, JSONValue)] = [("type", .string("yarn"))]
        for (key, json) in [
            ("rope.scaling.factor", "factor"), ("rope.scaling.original_context_length", "original_max_position_embeddings"),
            ("rope.scaling.yarn_beta_fast", "beta_fast"), ("rope.scaling.yarn_beta_slow", "beta_slow"),
        ] {
            if let text = gguf.value(metadata, key) { members.append((json, .number(text))) }
        }
        return [("rope_scaling", .object(JSONObject(members + extra)))]
    }

    /// A float as llama.cpp stores it (f32), in its shortest decimal.
    static func number(_ value: Double) -> String { String(Double(String(Float(value))) ?? value) }
}

/// llama.cpp's names of a decoder's tensors (gguf-py's `TENSOR_NAMES`), experts stacked. Query and
/// key rows are interleaved for the architectures llama.cpp runs with NORM rotary (llama,
/// granitemoe), in transformers' order for NEOX (qwen2moe, qwen3moe, olmoe).
enum GGUFNames {
    static func layout(interleavedRotary: Bool) -> NamingLayout {
        let rotary: LayoutEntry.Transform = interleavedRotary ? .rotaryInterleaved : .identity
        var entries = [
            LayoutEntry("token_embd.weight", "embed"), LayoutEntry("output_norm.weight", "final_norm"),
            LayoutEntry("output.weight", "lm_head"), LayoutEntry("blk.{bid}.attn_norm.weight", "layers.{bid}.attn_norm"),
            LayoutEntry("blk.{bid}.attn_q.weight", "layers.{bid}.attn.q", rotary),
            LayoutEntry("blk.{bid}.attn_k.weight", "layers.{bid}.attn.k", rotary),
            LayoutEntry("blk.{bid}.attn_v.weight", "layers.{bid}.attn.v"),
            LayoutEntry("blk.{bid}.attn_output.weight", "layers.{bid}.attn.o"),
            LayoutEntry("blk.{bid}.attn_q.bias", "layers.{bid}.attn.q_bias", rotary),
            LayoutEntry("blk.{bid}.attn_k.bias", "layers.{bid}.attn.k_bias", rotary),
            LayoutEntry("blk.{bid}.attn_v.bias", "layers.{bid}.attn.v_bias"),
            LayoutEntry("blk.{bid}.attn_output.bias", "layers.{bid}.attn.o_bias"),
            LayoutEntry("blk.{bid}.attn_q_norm.weight", "layers.{bid}.attn.q_norm"),
            LayoutEntry("blk.{bid}.attn_k_norm.weight", "layers.{bid}.attn.k_norm"),
            LayoutEntry("blk.{bid}.ffn_norm.weight", "layers.{bid}.ffn_norm"),
            LayoutEntry("blk.{bid}.ffn_gate_inp.weight", "layers.{bid}.moe.router"),
            LayoutEntry("blk.{bid}.ffn_gate_inp_shexp.weight", "layers.{bid}.moe.shared_gate"),
        ]
        for projection in ["gate", "up", "down"] {
            entries.append(LayoutEntry("blk.{bid}.ffn_\(projection)_exps.weight", "layers.{bid}.moe.\(projection)"))
            entries.append(LayoutEntry("blk.{bid}.ffn_\(projection)_shexp.weight", "layers.{bid}.moe.shared.\(projection)"))
        }
        return NamingLayout(key: "gguf", title: "GGUF (llama.cpp)", entries: entries, description: .ggufMetadata)
    }

    /// What llama.cpp's MoE decoders cannot hold: they run SiLU experts and (but deepseek2's
    /// leading ones) have no dense layers.
    static func decoderLimits(_ d: DecoderConfig, hiddenAct: String, denseLayersAllowed: Bool = false) -> [String] {
        var lost: [String] = []
        if d.activation != .silu { lost.append("hidden_act \(hiddenAct) (llama.cpp runs these experts with SiLU)") }
        if !denseLayersAllowed, !d.denseLayers.isEmpty {
            lost.append("dense layers \(d.denseLayers) (llama.cpp has experts in every layer)")
        }
        return lost
    }
}
