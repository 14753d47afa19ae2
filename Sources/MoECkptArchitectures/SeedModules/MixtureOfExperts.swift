import MoECkptFormats
import MoECkptModels
import MoECkptTensors

/// `MixtureOfExperts(d_model, d_ff, num_experts, k)`: ReLU experts with biases and a top-k router.
public struct TopKMoEConfig: Architecture {
    public static let modelType = "mixture_of_experts"
    public var dModel: Int
    public var dFF: Int
    public var numExperts: Int
    public var k: Int

    public init(configJSON f: inout ConfigFields) {
        dModel = f.count("d_model")
        dFF = f.count("d_ff")
        numExperts = f.count("num_experts")
        k = f.count("k")
    }

    public var configJSON: JSONObject {
        JSONObject([("model_type", .string(Self.modelType)), ("d_model", .integer(dModel)), ("d_ff", .integer(dFF)),
                    ("num_experts", .integer(numExperts)), ("k", .integer(k))])
    }

    public var inconsistencies: [String] { k > numExperts ? ["k (\(k)) exceeds num_experts (\(numExperts))"] : [] }

    public var canonicalTensors: [TensorRequirement] {
        SeedTensors.linear("router", numExperts, dModel) + SeedTensors.experts("experts.w1", numExperts, dFF, dModel)
            + SeedTensors.experts("experts.w2", numExperts, dModel, dFF)
    }

    public static let externalLayouts = [NamingLayout(
        key: "mixture_of_experts", title: "MixtureOfExperts state_dict",
        entries: SeedLayoutRows.linear("router.router", "router") + SeedLayoutRows.experts("experts.{xid}.w1", "experts.w1")
            + SeedLayoutRows.experts("experts.{xid}.w2", "experts.w2"))]

    public func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        MixtureOfExpertsForward(config: self, weights: try SeedModuleWeights(model))
    }
}

/// Returns `outputs` and the module's own `aux_loss`.
struct MixtureOfExpertsForward: ForwardPass {
    let config: TopKMoEConfig
    let weights: SeedModuleWeights

    var input: InputKey { .inputs }

    func bytesNeeded(input shape: [Int], threads: Int) -> Int? {
        SeedModuleWeights.bytesNeeded(inputs: shape, expertRows: config.k * max(1, config.dFF / max(config.dModel, 1)))
    }

    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        let x = try input.values(width: config.dModel)
        let c = config
        let (out, aux) = weights.topKMoE("", c.dModel, c.dFF, c.numExperts, c.k, x.values, rows: x.rows, threads: threads)
        return [.outputs: HostTensor(shape: x.shape, values: out), .auxLoss: .scalar(aux)]
    }
}
