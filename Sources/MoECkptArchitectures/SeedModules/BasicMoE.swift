import MoECkptForward
import MoECkptFormats
import MoECkptModels
import MoECkptTensors

/// `BasicMOE(feature_in, feature_out, num_experts)`: a dense softmax mixture of linear experts.
public struct BasicMoEConfig: Architecture {
    public static let modelType = "basic_moe"
    public var featureIn: Int
    public var featureOut: Int
    public var numExperts: Int

    public init(configJSON f: inout ConfigFields) {
        featureIn = f.count("feature_in")
        featureOut = f.count("feature_out")
        numExperts = f.count("num_experts")
    }

    public var configJSON: JSONObject {
        JSONObject([("model_type", .string(Self.modelType)), ("feature_in", .integer(featureIn)),
                    ("feature_out", .integer(featureOut)), ("num_experts", .integer(numExperts))])
    }

    public var inconsistencies: [String] { [] }

    public var canonicalTensors: [TensorRequirement] {
        SeedTensors.linear("gate", numExperts, featureIn) + SeedTensors.experts("experts.fc", numExperts, featureOut, featureIn)
    }

    public static let externalLayouts = [NamingLayout(
        key: "basic_moe", title: "BasicMOE state_dict",
        entries: SeedLayoutRows.linear("gate", "gate") + SeedLayoutRows.experts("experts.{xid}.fc", "experts.fc"))]

    public func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        BasicMoEForward(config: self, weights: try SeedModuleWeights(model))
    }
}

/// softmax(gate(x)) mixes every linear expert's output.
struct BasicMoEForward: ForwardPass {
    let config: BasicMoEConfig
    let weights: SeedModuleWeights

    var input: InputKey { .inputs }

    func bytesNeeded(input shape: [Int], threads: Int) -> Int? {
        SeedModuleWeights.bytesNeeded(inputs: shape, expertRows: config.numExperts * max(1, config.featureOut / max(config.featureIn, 1)))
    }

    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        let c = config
        let x = try input.values(width: c.featureIn)
        guard x.shape.count == 2 else { throw .badInput("inputs must be [batch, feature_in], not \(x.shape)") }
        let rows = x.rows
        let gates = softmaxRows(weights.linear("gate", inputs: c.featureIn, outputs: c.numExperts).apply(x.values, rows: rows, threads: threads),
                                rows: rows, columns: c.numExperts)
        let all = Array(0..<rows)
        var output = [Float](repeating: 0, count: rows * c.featureOut)
        for e in 0..<c.numExperts {
            let y = weights.experts("experts.fc", count: c.numExperts, inputs: c.featureIn, outputs: c.featureOut)
                .apply(expert: e, x.values, rows: rows, threads: threads)
            Routing.scatterAdd(y, width: c.featureOut, rows: all, weights: all.map { gates[$0 * c.numExperts + e] }, into: &output)
        }
        return [.outputs: HostTensor(shape: [rows, c.featureOut], values: output)]
    }
}
