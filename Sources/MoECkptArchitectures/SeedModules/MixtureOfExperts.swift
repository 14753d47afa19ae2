import MoECkptFormats
import MoECkptModels
import MoECkptTensors

/// `MixtureOfExperts(d_model, d_ff, num_experts, k)`: ReLU experts with biases and a top-k router.
public struct TopKMoEConfig: SeedModule {
    public static let modelType = "mixture_of_experts"
    public var dModel, dFF, numExperts, k: Int

    public init(configJSON f: inout ConfigFields) {
        (dModel, dFF, numExperts, k) = (f.count("d_model"), f.count("d_ff"), f.count("num_experts"), f.count("k"))
    }

    public var configJSON: JSONObject {
        SeedConfig.json(Self.modelType, [("d_model", dModel), ("d_ff", dFF), ("num_experts", numExperts), ("k", k)])
    }

    public var inconsistencies: [String] { k > numExperts ? ["k (\(k)) exceeds num_experts (\(numExperts))"] : [] }

    public var canonicalTensors: [TensorRequirement] {
        SeedTensors.linear("router", numExperts, dModel) + SeedTensors.experts("experts.w1", numExperts, dFF, dModel)
            + SeedTensors.experts("experts.w2", numExperts, dModel, dFF)
    }

    public static let externalLayouts = [
        NamingLayout(
            key: "mixture_of_experts", title: "MixtureOfExperts state_dict",
            entries: SeedLayoutRows.linear("router.router", "router") + SeedLayoutRows.experts("experts.{xid}.w1", "experts.w1")
                + SeedLayoutRows.experts("experts.{xid}.w2", "experts.w2"))
    ]

    var inputWidth: Int { dModel }
    var expertRows: Int { k * max(1, dFF / max(dModel, 1)) }
}

extension TopKMoEConfig {
    /// Returns `outputs` and the module's own `aux_loss`.
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
    {
        let (out, aux) = weights.topKMoE("", dModel, dFF, numExperts, k, x.values, rows: x.rows, threads: threads)
        return [.outputs: HostTensor(shape: x.shape, values: out), .auxLoss: .scalar(aux)]
    }
}
