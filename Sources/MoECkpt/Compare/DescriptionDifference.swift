/// One way the two models' descriptions differ: a config.json key as each model's description
/// writes it (nested keys dotted), or the routing as a whole.
public struct DescriptionDifference: Encodable, Sendable, Equatable {
    public let key: String
    /// The value in A and in B, as JSON; nil where the key is absent.
    public let a: String?
    public let b: String?
    /// Whether the difference can change what the model computes on inputs both accept (not a
    /// maximum length, token ids or a training-only coefficient).
    public let affectsOutputs: Bool

    init(key: String, a: String?, b: String?) {
        (self.key, self.a, self.b) = (key, a, b)
        affectsOutputs = !Self.informationalKeys.contains(key)
    }

    enum CodingKeys: String, CodingKey { case key, a, b, affectsOutputs = "affects_outputs" }

    /// Keys that do not change the outputs: what a layout's own description leaves out or
    /// defaults (Mistral's params.json has no maximum length) is reported, not failed.
    static let informationalKeys: Set<String> = [
        "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "use_cache",
        "output_router_logits", "router_aux_loss_coef", "router_z_loss_coef", "attention_dropout", "torch_dtype", "dtype",
        "transformers_version", "architectures", "num_nextn_predict_layers",
    ]

    /// The keys that decide routing, listed first: a wrong one changes which experts run.
    static let routingKeys: [String] = [
        "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "norm_topk_prob", "scoring_func",
        "topk_method", "n_group", "topk_group", "routed_scaling_factor", "n_shared_experts", "shared_expert_intermediate_size",
        "moe_intermediate_size", "first_k_dense_replace", "decoder_sparse_step", "mlp_only_layers", "moe_layer_freq",
    ]

    static func between(_ a: LoadedModel, _ b: LoadedModel) -> [DescriptionDifference] {
        var out: [DescriptionDifference] = []
        let (routingA, routingB) = (a.architecture.moeRouting, b.architecture.moeRouting)
        if routingA != routingB {
            out.append(DescriptionDifference(key: "routing", a: routingA?.summary, b: routingB?.summary))
        }
        let (valuesA, valuesB) = (flattened(a.architecture.configJSON), flattened(b.architecture.configJSON))
        var keys = valuesA.map(\.key)
        for (key, _) in valuesB where !keys.contains(key) { keys.append(key) }
        let lookupA = Dictionary(valuesA, uniquingKeysWith: { first, _ in first })
        let lookupB = Dictionary(valuesB, uniquingKeysWith: { first, _ in first })
        let ordered = keys.filter { routingKeys.contains($0) } + keys.filter { !routingKeys.contains($0) }
        for key in ordered where lookupA[key] != lookupB[key] {
            out.append(DescriptionDifference(key: key, a: lookupA[key], b: lookupB[key]))
        }
        return out
    }

    /// Every leaf of a JSON object, keys dotted, values serialized.
    static func flattened(_ object: JSONObject, prefix: String = "") -> [(key: String, value: String)] {
        zip(object.keys, object.values).flatMap { key, value -> [(key: String, value: String)] in
            if case .object(let inner) = value { return flattened(inner, prefix: prefix + key + ".") }
            return [(prefix + key, value.serialized(.compact))]
        }
    }
}
