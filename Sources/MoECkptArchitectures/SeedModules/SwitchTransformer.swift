import MoECkptFormats
import MoECkptForward
import MoECkptModels
import MoECkptTensors

/// `SwitchTransformer(d_model, num_experts, capacity_factor)`: top-1 routing with a capacity.
public struct SwitchConfig: SeedModule {
    public static let modelType = "switch_transformer"
    public var dModel, numExperts: Int
    public var capacityFactor: Double
    /// The Switch paper's variant: scale each expert output by its router probability (the seed
    /// module does not).
    public var scaleByRouterProbability: Bool

    public init(configJSON f: inout ConfigFields) {
        dModel = f.count("d_model")
        numExperts = f.count("num_experts")
        capacityFactor = f.optionalDouble("capacity_factor") ?? 1.25
        scaleByRouterProbability = f.optionalBool("scale_by_router_probability") ?? false
    }

    public var configJSON: JSONObject {
        var members: [(String, JSONValue)] = [
            ("model_type", .string(Self.modelType)), ("d_model", .integer(dModel)), ("num_experts", .integer(numExperts)),
            ("capacity_factor", .float(capacityFactor)),
        ]
        if scaleByRouterProbability { members.append(("scale_by_router_probability", .bool(true))) }
        return JSONObject(members)
    }

    public var inconsistencies: [String] { capacityFactor > 0 ? [] : ["capacity_factor must be positive"] }

    public var canonicalTensors: [TensorRequirement] {
        SeedTensors.linear("router", numExperts, dModel) + SeedTensors.experts("experts.w1", numExperts, 4 * dModel, dModel)
            + SeedTensors.experts("experts.w2", numExperts, dModel, 4 * dModel)
    }

    public static let externalLayouts = [
        NamingLayout(
            key: "switch_transformer", title: "SwitchTransformer state_dict",
            entries: SeedLayoutRows.linear("router", "router") + SeedLayoutRows.experts("experts.{xid}.w1", "experts.w1")
                + SeedLayoutRows.experts("experts.{xid}.w2", "experts.w2"))
    ]

    var inputWidth: Int { dModel }
    var expertRows: Int { 4 }
}

extension SwitchConfig {
    /// Top-1 by argmax; per expert at most int(capacity_factor * seq_len / E) tokens of the whole
    /// batch, the most probable kept; dropped tokens give zero; outputs not scaled by the gate unless
    /// the config asks for the paper's variant.
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
    {
        guard x.shape.count == 3 else { throw .badInput("inputs must be [batch, seq_len, d_model], not \(x.shape)") }
        let (d, experts, rows) = (dModel, numExperts, x.rows)
        let logits = weights.linear("router", inputs: d, outputs: experts).apply(x.values, rows: rows, threads: threads)
        let probabilities = softmaxRows(logits, rows: rows, columns: experts)
        let capacity = Int(min((capacityFactor * Double(x.shape[1]) / Double(experts)).rounded(.towardZero), Double(rows)))
        var output = [Float](repeating: 0, count: rows * d)
        for e in 0..<experts {
            var routed: [Int] = []
            for t in 0..<rows {
                var best = 0
                for j in 1..<experts where logits[t * experts + j] > logits[t * experts + best] { best = j }
                if best == e { routed.append(t) }
            }
            if routed.count > capacity {
                routed = routed.sorted {
                    probabilities[$0 * experts + e] > probabilities[$1 * experts + e]
                        || (probabilities[$0 * experts + e] == probabilities[$1 * experts + e] && $0 < $1)
                }
                routed = Array(routed.prefix(capacity)).sorted()
            }
            guard !routed.isEmpty else { continue }
            let y = weights.reluExpert(
                "experts.", e, Routing.gather(x.values, width: d, rows: routed), rows: routed.count,
                d: d, dFF: 4 * d, experts: experts, threads: threads)
            let scale = scaleByRouterProbability ? routed.map { probabilities[$0 * experts + e] } : nil
            Routing.scatterAdd(y, width: d, rows: routed, weights: scale, into: &output)
        }
        return [.outputs: HostTensor(shape: x.shape, values: output)]
    }
}
