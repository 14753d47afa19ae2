import MoECkptModels

/// Mixtral's tensor names in every common layout, mapped onto the canonical names
/// (`embed`, `layers.N.attn.q`, `layers.N.moe.gate` [experts, intermediate, hidden], ...).
public enum MixtralLayouts {
    /// Attention, norms and embeddings as transformers (and mlx-lm) name them.
    static func transformersCommon(router: String) -> [LayoutEntry] {
        TransformersNames.core + [LayoutEntry(router, "layers.{bid}.moe.router")]
    }

    static let inverseFrequencyBuffers = ["model.layers.{bid}.self_attn.rotary_emb.inv_freq"]

    public static let huggingFace = NamingLayout(
        key: "hf", title: "Hugging Face",
        entries: transformersCommon(router: "model.layers.{bid}.block_sparse_moe.gate.weight") + [
            LayoutEntry("model.layers.{bid}.block_sparse_moe.experts.{xid}.w1.weight", "layers.{bid}.moe.gate", .perExpert),
            LayoutEntry("model.layers.{bid}.block_sparse_moe.experts.{xid}.w3.weight", "layers.{bid}.moe.up", .perExpert),
            LayoutEntry("model.layers.{bid}.block_sparse_moe.experts.{xid}.w2.weight", "layers.{bid}.moe.down", .perExpert),
        ],
        ignored: inverseFrequencyBuffers)

    public static let huggingFaceFused = NamingLayout(
        key: "hf-fused", title: "transformers 5 fused experts",
        entries: transformersCommon(router: "model.layers.{bid}.mlp.gate.weight") + [
            LayoutEntry("model.layers.{bid}.mlp.experts.gate_up_proj", fused: ["layers.{bid}.moe.gate", "layers.{bid}.moe.up"]),
            LayoutEntry("model.layers.{bid}.mlp.experts.down_proj", "layers.{bid}.moe.down"),
        ])

    /// Mistral's and llama.cpp's names side by side, a row per canonical tensor: both store
    /// query/key rows in interleaved rotary order; Mistral keeps a tensor per expert
    /// (`.perExpert`), llama.cpp stacks them.
    static let mistralAndGGUF: [(canonical: String, mistral: String, gguf: String, transform: LayoutEntry.Transform)] = [
        ("embed", "tok_embeddings.weight", "token_embd.weight", .identity),
        ("final_norm", "norm.weight", "output_norm.weight", .identity),
        ("lm_head", "output.weight", "output.weight", .identity),
        ("layers.{bid}.attn_norm", "layers.{bid}.attention_norm.weight", "blk.{bid}.attn_norm.weight", .identity),
        ("layers.{bid}.ffn_norm", "layers.{bid}.ffn_norm.weight", "blk.{bid}.ffn_norm.weight", .identity),
        ("layers.{bid}.attn.q", "layers.{bid}.attention.wq.weight", "blk.{bid}.attn_q.weight", .rotaryInterleaved),
        ("layers.{bid}.attn.k", "layers.{bid}.attention.wk.weight", "blk.{bid}.attn_k.weight", .rotaryInterleaved),
        ("layers.{bid}.attn.v", "layers.{bid}.attention.wv.weight", "blk.{bid}.attn_v.weight", .identity),
        ("layers.{bid}.attn.o", "layers.{bid}.attention.wo.weight", "blk.{bid}.attn_output.weight", .identity),
        ("layers.{bid}.moe.router", "layers.{bid}.feed_forward.gate.weight", "blk.{bid}.ffn_gate_inp.weight", .identity),
        ("layers.{bid}.moe.gate", "layers.{bid}.feed_forward.experts.{xid}.w1.weight", "blk.{bid}.ffn_gate_exps.weight", .perExpert),
        ("layers.{bid}.moe.up", "layers.{bid}.feed_forward.experts.{xid}.w3.weight", "blk.{bid}.ffn_up_exps.weight", .perExpert),
        ("layers.{bid}.moe.down", "layers.{bid}.feed_forward.experts.{xid}.w2.weight", "blk.{bid}.ffn_down_exps.weight", .perExpert),
    ]

    public static let mistral = NamingLayout(
        key: "mistral", title: "Mistral native",
        entries: mistralAndGGUF.map { LayoutEntry($0.mistral, $0.canonical, $0.transform) },
        description: .mistralParams, fileStem: "consolidated", writesTiedHead: true)

    public static let gguf = NamingLayout(
        key: "gguf", title: "GGUF (llama.cpp)",
        entries: mistralAndGGUF.map { LayoutEntry($0.gguf, $0.canonical, $0.transform == .perExpert ? .identity : $0.transform) },
        description: .ggufMetadata)

    public static let mlx = NamingLayout(
        key: "mlx", title: "mlx-lm (stacked experts)",
        entries: transformersCommon(router: "model.layers.{bid}.block_sparse_moe.gate.weight") + [
            LayoutEntry("model.layers.{bid}.block_sparse_moe.switch_mlp.gate_proj.weight", "layers.{bid}.moe.gate"),
            LayoutEntry("model.layers.{bid}.block_sparse_moe.switch_mlp.up_proj.weight", "layers.{bid}.moe.up"),
            LayoutEntry("model.layers.{bid}.block_sparse_moe.switch_mlp.down_proj.weight", "layers.{bid}.moe.down"),
        ])

    public static let all = [huggingFace, huggingFaceFused, mistral, gguf, mlx]
}
