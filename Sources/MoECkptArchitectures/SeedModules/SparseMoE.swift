import MoECkptFormats
import MoECkptForward
import MoECkptModels
import MoECkptTensors

/// `SparseMOE(MOEConfig(hidden_dim, expert_number, top_k, shared_experts_number))`.
public struct SparseMoEConfig: SeedModule {
    public static let modelType = "sparse_moe"
    public var hiddenDim, expertNumber, topK, sharedExpertsNumber: Int

    public init(configJSON f: inout ConfigFields) {
        (hiddenDim, expertNumber, topK) = (f.count("hidden_dim"), f.count("expert_number"), f.count("top_k"))
        sharedExpertsNumber = f.optionalCount("shared_experts_number", allowZero: true) ?? 0
    }

    public var configJSON: JSONObject {
        SeedConfig.json(
            Self.modelType,
            [("hidden_dim", hiddenDim), ("expert_number", expertNumber), ("top_k", topK), ("shared_experts_number", sharedExpertsNumber)])
    }

    public var inconsistencies: [String] { topK > expertNumber ? ["top_k (\(topK)) exceeds expert_number (\(expertNumber))"] : [] }

    public var canonicalTensors: [TensorRequirement] {
        let h = hiddenDim
        var list = SeedTensors.linear("router", expertNumber, h) + SeedTensors.experts("experts.fc", expertNumber, h, h)
        if sharedExpertsNumber > 0 { list += SeedTensors.experts("shared.fc", sharedExpertsNumber, h, h) }
        return list
    }

    public static let externalLayouts = [
        NamingLayout(
            key: "sparse_moe", title: "SparseMOE state_dict",
            entries: SeedLayoutRows.linear("router.gate", "router") + SeedLayoutRows.experts("experts.{xid}.fc", "experts.fc")
                + SeedLayoutRows.experts("shared_experts.{xid}.fc", "shared.fc"))
    ]

    var inputWidth: Int { hiddenDim }
    var expertRows: Int { topK + sharedExpertsNumber }
}

extension SparseMoEConfig {
    /// Softmax router with bias, top-k renormalised, linear experts; plus the shared experts' outputs
    /// when configured. Returns `outputs` and `router_logits` (and, asked for, the auxiliary losses
    /// computed from them).
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
    {
        let (h, rows) = (hiddenDim, x.rows)
        let logits = weights.linear("router", inputs: h, outputs: expertNumber).apply(x.values, rows: rows, threads: threads)
        let routing = Routing.topK(
            softmaxRows(logits, rows: rows, columns: expertNumber), tokens: rows,
            experts: expertNumber, k: topK, renormalize: true)
        var output = [Float](repeating: 0, count: rows * h)
        let sparse = weights.experts("experts.fc", count: expertNumber, inputs: h, outputs: h)
        for e in 0..<expertNumber where !routing.tokens[e].isEmpty {
            let selected = routing.tokens[e]
            let y = sparse.apply(expert: e, Routing.gather(x.values, width: h, rows: selected), rows: selected.count, threads: threads)
            Routing.scatterAdd(y, width: h, rows: selected, weights: routing.weights[e], into: &output)
        }
        if sharedExpertsNumber > 0 {
            let shared = weights.experts("shared.fc", count: sharedExpertsNumber, inputs: h, outputs: h)
            var sum = [Float](repeating: 0, count: rows * h)
            let all = Array(0..<rows)
            for s in 0..<sharedExpertsNumber {
                Routing.scatterAdd(
                    shared.apply(expert: s, x.values, rows: rows, threads: threads), width: h, rows: all,
                    weights: nil, into: &sum)
            }
            for j in 0..<output.count { output[j] += sum[j] }
        }
        var result: [OutputKey: HostTensor] = [
            .outputs: HostTensor(shape: x.shape, values: output),
            .routerLogits: HostTensor(shape: [rows, expertNumber], values: logits),
        ]
        if auxLosses {
            result[.auxLoss] = .scalar(AuxiliaryLoss.loadBalancing([logits], experts: expertNumber, k: topK))
            result[.routerZLoss] = .scalar(AuxiliaryLoss.routerZ([logits], experts: expertNumber))
        }
        return result
    }
}
