/// What an MoE tensor does, whatever a layout calls it.
public enum MoETensorRole: String, Sendable, Codable {
    /// The router: [experts, hidden].
    case router
    /// One expert's projection: [out, in].
    case expert
    /// All experts of a layer stacked: [experts, out, in].
    case stackedExperts
}

/// The expert and router tensor names of one naming layout. Issue-level detail (attention, norms,
/// embeddings) lives with the model descriptions; this table is what inspection needs.
public struct MoENamingLayout: Sendable {
    public let name: String
    public let routers: [NamePattern]
    public let experts: [NamePattern]
    public let stackedExperts: [NamePattern]

    public static let all: [MoENamingLayout] = [
        MoENamingLayout(
            name: "Hugging Face (Mixtral)",
            routers: [NamePattern("model.layers.{bid}.block_sparse_moe.gate.weight")],
            experts: ["w1", "w2", "w3"].map { NamePattern("model.layers.{bid}.block_sparse_moe.experts.{xid}.\($0).weight") },
            stackedExperts: []),
        MoENamingLayout(
            name: "Hugging Face transformers 5 (fused experts)",
            routers: [NamePattern("model.layers.{bid}.mlp.gate.weight")],
            experts: [],
            stackedExperts: ["gate_up_proj", "down_proj"].map { NamePattern("model.layers.{bid}.mlp.experts.\($0)") }),
        MoENamingLayout(
            name: "Mistral native",
            routers: [NamePattern("layers.{bid}.feed_forward.gate.weight")],
            experts: ["w1", "w2", "w3"].map { NamePattern("layers.{bid}.feed_forward.experts.{xid}.\($0).weight") },
            stackedExperts: []),
        MoENamingLayout(
            name: "GGUF",
            routers: [NamePattern("blk.{bid}.ffn_gate_inp.weight")],
            experts: [],
            stackedExperts: ["gate", "up", "down"].map { NamePattern("blk.{bid}.ffn_\($0)_exps.weight") }),
        MoENamingLayout(
            name: "MLX",
            routers: [NamePattern("model.layers.{bid}.block_sparse_moe.gate.weight")],
            experts: [],
            stackedExperts: ["gate_proj", "up_proj", "down_proj"].map {
                NamePattern("model.layers.{bid}.block_sparse_moe.switch_mlp.\($0).weight")
            }),
    ]
}
