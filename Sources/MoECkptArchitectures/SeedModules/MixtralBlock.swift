import MoECkptFormats
import MoECkptForward
import MoECkptModels
import MoECkptTensors

/// `MixtralBlock(d_model, n_heads, num_experts, k)`: multi-head attention and a top-k MoE, post-norm.
public struct MixtralBlockConfig: SeedModule {
    public static let modelType = "mixtral_block"
    public var dModel, nHeads, numExperts, k: Int

    public init(configJSON f: inout ConfigFields) {
        (dModel, nHeads, numExperts, k) = (f.count("d_model"), f.count("n_heads"), f.count("num_experts"), f.count("k"))
    }

    public var configJSON: JSONObject {
        SeedConfig.json(Self.modelType, [("d_model", dModel), ("n_heads", nHeads), ("num_experts", numExperts), ("k", k)])
    }

    public var inconsistencies: [String] {
        var problems = k > numExperts ? ["k (\(k)) exceeds num_experts (\(numExperts))"] : []
        if dModel % nHeads != 0 { problems.append("d_model (\(dModel)) is not divisible by n_heads (\(nHeads))") }
        return problems
    }

    public var canonicalTensors: [TensorRequirement] {
        let d = dModel
        return [
            TensorRequirement(name: "attn.in_proj.weight", shape: [3 * d, d]), TensorRequirement(name: "attn.in_proj.bias", shape: [3 * d]),
        ]
            + SeedTensors.linear("attn.out_proj", d, d) + SeedTensors.linear("moe.router", numExperts, d)
            + SeedTensors.experts("moe.experts.w1", numExperts, 4 * d, d) + SeedTensors.experts("moe.experts.w2", numExperts, d, 4 * d)
            + [
                TensorRequirement(name: "ln1.weight", shape: [d]), TensorRequirement(name: "ln1.bias", shape: [d]),
                TensorRequirement(name: "ln2.weight", shape: [d]), TensorRequirement(name: "ln2.bias", shape: [d]),
            ]
    }

    public static let externalLayouts = [
        NamingLayout(
            key: "mixtral_block", title: "MixtralBlock state_dict",
            entries: [LayoutEntry("attn.in_proj_weight", "attn.in_proj.weight"), LayoutEntry("attn.in_proj_bias", "attn.in_proj.bias")]
                + SeedLayoutRows.linear("attn.out_proj", "attn.out_proj") + SeedLayoutRows.linear("moe.router.router", "moe.router")
                + SeedLayoutRows.experts("moe.experts.{xid}.w1", "moe.experts.w1")
                + SeedLayoutRows.experts("moe.experts.{xid}.w2", "moe.experts.w2")
                + SeedLayoutRows.linear("ln1", "ln1") + SeedLayoutRows.linear("ln2", "ln2"))
    ]

    var inputWidth: Int { dModel }
    var expertRows: Int { k * 4 }

    func attentionScratch(inputs shape: [Int]) -> Int {
        shape.count == 3 ? HeadAttention.scratchBytes(tokens: shape[1], d: dModel / max(nHeads, 1)) : 0
    }
}

extension MixtralBlockConfig {
    /// nn.MultiheadAttention (packed in_proj with biases, no mask), residual, LayerNorm; the MoE with
    /// d_ff = 4 d, residual, LayerNorm. Returns `outputs` and the MoE's own `aux_loss`.
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
    {
        guard x.shape.count == 3 else { throw .badInput("inputs must be [batch, seq_len, d_model], not \(x.shape)") }
        let (batch, tokens) = (x.shape[0], x.shape[1])
        let d = dModel
        let rows = batch * tokens
        let headDim = d / nHeads
        let projected = weights.linear("attn.in_proj", inputs: d, outputs: 3 * d).apply(x.values, rows: rows, threads: threads)
        var context = [Float](repeating: 0, count: rows * d)
        let scaling = 1 / Float(headDim).squareRoot()
        for b in 0..<batch {
            let sequence = b * tokens..<(b + 1) * tokens
            for head in 0..<nHeads {
                let q = columns(projected, rows: sequence, width: 3 * d, from: head * headDim, count: headDim)
                let k = columns(projected, rows: sequence, width: 3 * d, from: d + head * headDim, count: headDim)
                let v = columns(projected, rows: sequence, width: 3 * d, from: 2 * d + head * headDim, count: headDim)
                let result = HeadAttention.attend(
                    queries: q, keys: k, values: v, tokens: tokens, d: headDim, scaling: scaling,
                    mask: .none)
                for i in 0..<tokens {
                    for col in 0..<headDim { context[(b * tokens + i) * d + head * headDim + col] = result[i * headDim + col] }
                }
            }
        }
        let attention = weights.linear("attn.out_proj", inputs: d, outputs: d).apply(context, rows: rows, threads: threads)
        let afterAttention = weights.layerNorm("ln1", zip(x.values, attention).map { $0 + $1 }, rows: rows, width: d)
        let (moe, aux) = weights.topKMoE("moe.", d, 4 * d, numExperts, k, afterAttention, rows: rows, threads: threads)
        let out = weights.layerNorm("ln2", zip(afterAttention, moe).map { $0 + $1 }, rows: rows, width: d)
        return [.outputs: HostTensor(shape: x.shape, values: out), .auxLoss: .scalar(aux)]
    }
}
