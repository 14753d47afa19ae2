import MoECkptFormats

/// `MixtureOfExperts(d_model, d_ff, num_experts, k)`: ReLU experts with biases and a top-k router.
public struct TopKMoEConfig: Codable, Equatable, Sendable {
    public var dModel: Int
    public var dFF: Int
    public var numExperts: Int
    public var k: Int
}

/// `SwitchTransformer(d_model, num_experts, capacity_factor)`: top-1 routing with a capacity.
public struct SwitchConfig: Codable, Equatable, Sendable {
    public var dModel: Int
    public var numExperts: Int
    public var capacityFactor: Double
    /// The Switch paper's variant: scale each expert output by its router probability (the seed
    /// module does not).
    public var scaleByRouterProbability: Bool
}

/// `MixtralBlock(d_model, n_heads, num_experts, k)`: multi-head attention and a top-k MoE, post-norm.
public struct MixtralBlockConfig: Codable, Equatable, Sendable {
    public var dModel: Int
    public var nHeads: Int
    public var numExperts: Int
    public var k: Int
}

/// `BasicMOE(feature_in, feature_out, num_experts)`: a dense softmax mixture of linear experts.
public struct BasicMoEConfig: Codable, Equatable, Sendable {
    public var featureIn: Int
    public var featureOut: Int
    public var numExperts: Int
}

/// `SparseMOE(MOEConfig(hidden_dim, expert_number, top_k, shared_experts_number))`.
public struct SparseMoEConfig: Codable, Equatable, Sendable {
    public var hiddenDim: Int
    public var expertNumber: Int
    public var topK: Int
    public var sharedExpertsNumber: Int
}

extension TopKMoEConfig {
    init(_ f: inout ConfigFields) {
        self.init(dModel: f.count("d_model"), dFF: f.count("d_ff"), numExperts: f.count("num_experts"), k: f.count("k"))
    }
}

extension SwitchConfig {
    init(_ f: inout ConfigFields) {
        self.init(dModel: f.count("d_model"), numExperts: f.count("num_experts"),
                  capacityFactor: f.optionalDouble("capacity_factor") ?? 1.25,
                  scaleByRouterProbability: f.optionalBool("scale_by_router_probability") ?? false)
    }
}

extension MixtralBlockConfig {
    init(_ f: inout ConfigFields) {
        self.init(dModel: f.count("d_model"), nHeads: f.count("n_heads"), numExperts: f.count("num_experts"), k: f.count("k"))
    }
}

extension BasicMoEConfig {
    init(_ f: inout ConfigFields) {
        self.init(featureIn: f.count("feature_in"), featureOut: f.count("feature_out"), numExperts: f.count("num_experts"))
    }
}

extension SparseMoEConfig {
    init(_ f: inout ConfigFields) {
        self.init(hiddenDim: f.count("hidden_dim"), expertNumber: f.count("expert_number"), topK: f.count("top_k"),
                  sharedExpertsNumber: f.optionalCount("shared_experts_number", allowZero: true) ?? 0)
    }
}
