import MoECkptFormats
import MoECkptModels

/// What Qwen2-MoE's and Qwen3-MoE's configs share: the experts, the renormalisation, the dense
/// layers (`mlp_only_layers`, and layers off the `decoder_sparse_step` grid) of `intermediate_size`.
public struct QwenMoEFields: Sendable, Equatable {
    public var decoderFields: DecoderFields
    public var intermediateSize, moeIntermediateSize: Int
    public var numExperts, expertsPerToken, decoderSparseStep: Int
    public var normTopKProb, useSlidingWindow: Bool
    public var mlpOnlyLayers: [Int]
    public var routerAuxLossCoef: Double

    init(_ f: inout ConfigFields, intermediateDefault: Int) {
        decoderFields = DecoderFields(&f, epsDefault: 1e-6)
        intermediateSize = f.optionalCount("intermediate_size") ?? intermediateDefault
        moeIntermediateSize = f.count("moe_intermediate_size")
        numExperts = f.count(anyOf: ["num_experts", "num_local_experts"])
        expertsPerToken = f.count("num_experts_per_tok")
        decoderSparseStep = f.optionalCount("decoder_sparse_step") ?? 1
        normTopKProb = f.optionalBool("norm_topk_prob") ?? false
        useSlidingWindow = f.optionalBool("use_sliding_window") ?? false
        mlpOnlyLayers = f.optionalCounts("mlp_only_layers") ?? []
        routerAuxLossCoef = f.optionalDouble("router_aux_loss_coef") ?? 0.001
    }

    func members(modelType: String, architecture: String) -> [(String, JSONValue)] {
        decoderFields.members(modelType: modelType, architecture: architecture) + [
            ("intermediate_size", .integer(intermediateSize)), ("moe_intermediate_size", .integer(moeIntermediateSize)),
            ("num_experts", .integer(numExperts)), ("num_experts_per_tok", .integer(expertsPerToken)),
            ("decoder_sparse_step", .integer(decoderSparseStep)), ("norm_topk_prob", .bool(normTopKProb)),
            ("use_sliding_window", .bool(useSlidingWindow)), ("mlp_only_layers", .array(mlpOnlyLayers.map { .integer($0) })),
            ("router_aux_loss_coef", .float(routerAuxLossCoef)),
        ]
    }

    var inconsistencies: [String] {
        var problems = decoderFields.activationProblems + decoder.inconsistencies
        if useSlidingWindow { problems.append("use_sliding_window (per-layer sliding attention) is not implemented by moeckpt") }
        return problems
    }

    /// The decoder before the family's own switches.
    var decoder: DecoderConfig {
        var d = decoderFields.decoder(
            numExperts: numExperts, expertsPerToken: expertsPerToken, expertIntermediate: moeIntermediateSize,
            router: RouterSemantics(renormalize: normTopKProb))
        d.denseLayers = Self.denseLayers(decoderFields.numLayers, step: decoderSparseStep, mlpOnly: mlpOnlyLayers)
        d.denseIntermediate = intermediateSize
        return d
    }

    /// A layer is sparse unless listed in `mlp_only_layers` or off the `decoder_sparse_step` grid.
    static func denseLayers(_ layers: Int, step: Int, mlpOnly: [Int]) -> [Int] {
        let listed = Set(mlpOnly)
        return (0..<layers).filter { listed.contains($0) || ($0 + 1) % max(step, 1) != 0 }
    }
}
