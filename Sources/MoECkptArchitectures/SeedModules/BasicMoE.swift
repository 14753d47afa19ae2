import MoECkptFormats
import MoECkptForward
import MoECkptModels
import MoECkptTensors

/// `BasicMOE(feature_in, feature_out, num_experts)`: a dense softmax mixture of linear experts.
public struct BasicMoEConfig: SeedModule {
    public static let modelType = "basic_moe"
    public var featureIn, featureOut, numExperts: Int

    public init(configJSON f: inout ConfigFields) {
        (featureIn, featureOut, numExperts) = (f.count("feature_in"), f.count("feature_out"), f.count("num_experts"))
    }

    public var configJSON: JSONObject {
        SeedConfig.json(Self.modelType, [("feature_in", featureIn), ("feature_out", featureOut), ("num_experts", numExperts)])
    }

    public var inconsistencies: [String] { [] }

    public var canonicalTensors: [TensorRequirement] {
        SeedTensors.linear("gate", numExperts, featureIn) + SeedTensors.experts("experts.fc", numExperts, featureOut, featureIn)
    }

    public static let externalLayouts = [
        NamingLayout(
            key: "basic_moe", title: "BasicMOE state_dict",
            entries: SeedLayoutRows.linear("gate", "gate") + SeedLayoutRows.experts("experts.{xid}.fc", "experts.fc"))
    ]

    var inputWidth: Int { featureIn }
    var expertRows: Int { numExperts * max(1, featureOut / max(featureIn, 1)) }
}

extension BasicMoEConfig {
    /// softmax(gate(x)) mixes every linear expert's output.
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
    {
        guard x.shape.count == 2 else { throw .badInput("inputs must be [batch, feature_in], not \(x.shape)") }
        let rows = x.rows
        let gates = softmaxRows(
            weights.linear("gate", inputs: featureIn, outputs: numExperts).apply(x.values, rows: rows, threads: threads),
            rows: rows, columns: numExperts)
        let all = Array(0..<rows)
        var output = [Float](repeating: 0, count: rows * featureOut)
        for e in 0..<numExperts {
            let y = weights.experts("experts.fc", count: numExperts, inputs: featureIn, outputs: featureOut)
                .apply(expert: e, x.values, rows: rows, threads: threads)
            Routing.scatterAdd(y, width: featureOut, rows: all, weights: all.map { gates[$0 * numExperts + e] }, into: &output)
        }
        return [.outputs: HostTensor(shape: [rows, featureOut], values: output)]
    }
}
