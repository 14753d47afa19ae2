import MoECkptForward
import MoECkptFormats
import MoECkptModels
import MoECkptTensors

/// `SparseMOE(MOEConfig(hidden_dim, expert_number, top_k, shared_experts_number))`.
public struct SparseMoEConfig: Architecture {
    public static let modelType = "sparse_moe"
    public var hiddenDim: Int
    public var expertNumber: Int
    public var topK: Int
    public var sharedExpertsNumber: Int

    public init(configJSON f: inout ConfigFields) {
        hiddenDim = f.count("hidden_dim")
        expertNumber = f.count("expert_number")
        topK = f.count("top_k")
        sharedExpertsNumber = f.optionalCount("shared_experts_number", allowZero: true) ?? 0
    }

    public var configJSON: JSONObject {
        JSONObject([("model_type", .string(Self.modelType)), ("hidden_dim", .integer(hiddenDim)),
                    ("expert_number", .integer(expertNumber)), ("top_k", .integer(topK)),
                    ("shared_experts_number", .integer(sharedExpertsNumber))])
    }

    public var inconsistencies: [String] { topK > expertNumber ? ["top_k (\(topK)) exceeds expert_number (\(expertNumber))"] : [] }

    public var canonicalTensors: [TensorRequirement] {
        let h = hiddenDim
        var list = SeedTensors.linear("router", expertNumber, h) + SeedTensors.experts("experts.fc", expertNumber, h, h)
        if sharedExpertsNumber > 0 { list += SeedTensors.experts("shared.fc", sharedExpertsNumber, h, h) }
        return list
    }

    public static let externalLayouts = [NamingLayout(
        key: "sparse_moe", title: "SparseMOE state_dict",
        entries: SeedLayoutRows.linear("router.gate", "router") + SeedLayoutRows.experts("experts.{xid}.fc", "experts.fc")
            + SeedLayoutRows.experts("shared_experts.{xid}.fc", "shared.fc"))]

    public func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        SparseMoEForward(config: self, weights: try SeedModuleWeights(model))
    }
}

/// Softmax router with bias, top-k renormalised, linear experts; plus the shared experts' outputs
/// when configured. Returns `outputs` and `router_logits` (and, asked for, the auxiliary losses
/// computed from them).
struct SparseMoEForward: ForwardPass {
    let config: SparseMoEConfig
    let weights: SeedModuleWeights

    var input: InputKey { .inputs }

    func bytesNeeded(input shape: [Int], threads: Int) -> Int? {
        SeedModuleWeights.bytesNeeded(inputs: shape, expertRows: config.topK + config.sharedExpertsNumber)
    }

    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        let c = config
        let x = try input.values(width: c.hiddenDim)
        let (h, rows) = (c.hiddenDim, x.rows)
        let logits = weights.linear("router", inputs: h, outputs: c.expertNumber).apply(x.values, rows: rows, threads: threads)
        let routing = Routing.topK(softmaxRows(logits, rows: rows, columns: c.expertNumber), tokens: rows,
                                   experts: c.expertNumber, k: c.topK, renormalize: true)
        var output = [Float](repeating: 0, count: rows * h)
        let sparse = weights.experts("experts.fc", count: c.expertNumber, inputs: h, outputs: h)
        for e in 0..<c.expertNumber where !routing.tokens[e].isEmpty {
            let selected = routing.tokens[e]
            let y = sparse.apply(expert: e, Routing.gather(x.values, width: h, rows: selected), rows: selected.count, threads: threads)
            Routing.scatterAdd(y, width: h, rows: selected, weights: routing.weights[e], into: &output)
        }
        if c.sharedExpertsNumber > 0 {
            let shared = weights.experts("shared.fc", count: c.sharedExpertsNumber, inputs: h, outputs: h)
            var sum = [Float](repeating: 0, count: rows * h)
            let all = Array(0..<rows)
            for s in 0..<c.sharedExpertsNumber {
                Routing.scatterAdd(shared.apply(expert: s, x.values, rows: rows, threads: threads), width: h, rows: all,
                                   weights: nil, into: &sum)
            }
            for j in 0..<output.count { output[j] += sum[j] }
        }
        var result: [OutputKey: HostTensor] = [.outputs: HostTensor(shape: x.shape, values: output),
                                               .routerLogits: HostTensor(shape: [rows, c.expertNumber], values: logits)]
        if auxLosses {
            result[.auxLoss] = .scalar(AuxiliaryLoss.loadBalancing([logits], experts: c.expertNumber, k: c.topK))
            result[.routerZLoss] = .scalar(AuxiliaryLoss.routerZ([logits], experts: c.expertNumber))
        }
        return result
    }
}
