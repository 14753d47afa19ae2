import Foundation
import MoECkptFormats
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// A decoder-only MoE language model as moeckpt runs it: what Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE
/// and GraniteMoE share (RMSNorm, rotary grouped-query attention, gated experts), with a switch
/// for each place they differ. Each family reads its own config into one of these.
public struct DecoderConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    /// Key j is visible to query i only when i - slidingWindow < j <= i.
    public var slidingWindow: Int?
    public var tieWordEmbeddings: Bool
    public var activation: GatedActivation

    /// Biases on the query, key and value projections (Qwen2-MoE), and on the output projection.
    public var attentionBias = false
    public var attentionOutputBias = false
    public var qkNorm = QKNorm.none
    /// Queries, keys and values clamped to [-c, c] (OLMoE's `clip_qkv`).
    public var clipQKV: Double?
    /// The attention's scale (GraniteMoE's `attention_multiplier`); nil: 1 / sqrt(head_dim).
    public var attentionScale: Double?
    /// GraniteMoE's multipliers: the embeddings, each block's output before the residual, and the
    /// divisor of the logits.
    public var embeddingMultiplier = 1.0
    public var residualMultiplier = 1.0
    public var logitsScaling = 1.0

    public var numExperts: Int
    public var expertsPerToken: Int
    /// Rows of each expert's gate and up projections.
    public var expertIntermediate: Int
    public var router: RouterSemantics
    public var sharedExpert: SharedExpert?
    /// Layers that run a dense MLP of `denseIntermediate` rows instead of the experts.
    public var denseLayers: [Int] = []
    public var denseIntermediate = 0

    /// The layers `slidingWindow` applies to (gpt-oss's `layer_types`); nil: every layer.
    public var slidingLayers: [Int]?
    /// A learned logit per head joining each attention softmax's denominator (gpt-oss).
    public var attentionSinks = false
    /// A bias on the router's logits (gpt-oss's `mlp.router.bias`).
    public var routerLogitBias = false
    /// Biases on every expert's gate, up and down projections (gpt-oss).
    public var expertBiases = false
    /// gpt-oss's activation: (up.clamp(±limit) + 1) * g * sigmoid(alpha g), g = min(gate, limit).
    public var clampedSwiGLU: ClampedSwiGLU?

    public struct ClampedSwiGLU: Sendable, Equatable {
        public var limit: Float
        public var alpha: Float

        public init(limit: Float, alpha: Float) {
            self.limit = limit
            self.alpha = alpha
        }
    }

    /// YaRN's rotary scaling (DeepSeek-V3, gpt-oss); nil: the default rotary embedding.
    public var yarn: YaRN?

    /// `rope_parameters` (or 4.x's `rope_scaling`) of type `yarn`.
    public struct YaRN: Sendable, Equatable {
        public var factor: Double
        public var originalMaxPositions: Int
        public var betaFast, betaSlow: Double
        public var truncate: Bool
        public var attentionFactor, mscale, mscaleAllDim: Double?

        /// DeepSeek's attention scale factor: mscale(factor, mscale_all_dim)^2 (1 without it).
        public var attentionScaleFactor: Double {
            guard let all = mscaleAllDim, all != 0, factor > 1 else { return 1 }
            let m = 0.1 * all * log(factor) + 1
            return m * m
        }
    }

    /// DeepSeek's multi-head latent attention instead of grouped-query attention (`headDim` is
    /// then the rotary part's size).
    public var latentAttention: LatentAttention?
    /// A per-expert bias the router adds to the scores to choose experts (`moe.router_bias`).
    public var routerSelectionBias = false

    /// Multi-head latent attention (DeepSeek-V2/V3): queries through an optional low-rank
    /// bottleneck, keys and values from one compressed latent of `kvLoraRank` plus a rotary key
    /// shared by the heads; each head's query and key are [nope | rope], its value `vHeadDim`.
    public struct LatentAttention: Sendable, Equatable {
        public var qLoraRank: Int?
        public var kvLoraRank: Int
        public var qkNopeHeadDim: Int
        public var qkRopeHeadDim: Int
        public var vHeadDim: Int
        /// The rotary dimensions stored in interleaved pairs (`rope_interleave`).
        public var ropeInterleave: Bool
        /// Biases on `q_a`, `kv_a` and `o` (`attention_bias`).
        public var bias: Bool

        public var qkHeadDim: Int { qkNopeHeadDim + qkRopeHeadDim }

        public init(
            qLoraRank: Int?, kvLoraRank: Int, qkNopeHeadDim: Int, qkRopeHeadDim: Int, vHeadDim: Int,
            ropeInterleave: Bool, bias: Bool
        ) {
            self.qLoraRank = qLoraRank
            self.kvLoraRank = kvLoraRank
            self.qkNopeHeadDim = qkNopeHeadDim
            self.qkRopeHeadDim = qkRopeHeadDim
            self.vHeadDim = vHeadDim
            self.ropeInterleave = ropeInterleave
            self.bias = bias
        }
    }

    /// RMSNorm of the queries and keys before the rotary embedding.
    public enum QKNorm: String, Sendable, Equatable, Encodable {
        case none
        /// Of each head's vector, one weight of head_dim shared by the heads (Qwen3-MoE).
        case perHead = "per head"
        /// Of the whole projection, a weight per row (OLMoE).
        case fullWidth = "full width"
    }

    /// An expert every token goes through, added to the routed ones.
    public struct SharedExpert: Sendable, Equatable, Encodable {
        public var intermediate: Int
        /// Scaled by sigmoid(shared_expert_gate(x)) (Qwen2-MoE), else added as it is.
        public var gated: Bool

        public init(intermediate: Int, gated: Bool) {
            self.intermediate = intermediate
            self.gated = gated
        }
    }

    public init(
        vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int,
        rmsNormEps: Double, ropeTheta: Double, slidingWindow: Int?, tieWordEmbeddings: Bool,
        activation: GatedActivation, numExperts: Int, expertsPerToken: Int, expertIntermediate: Int,
        router: RouterSemantics, yarn: YaRN? = nil
    ) {
        self.yarn = yarn
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.slidingWindow = slidingWindow
        self.tieWordEmbeddings = tieWordEmbeddings
        self.activation = activation
        self.numExperts = numExperts
        self.expertsPerToken = expertsPerToken
        self.expertIntermediate = expertIntermediate
        self.router = router
    }

    /// Whether a layer is dense (`denseLayers` is ascending: a binary search, since a hostile
    /// config may list millions).
    /// The sliding window of a layer's attention (nil: full).
    public func window(ofLayer layer: Int) -> Int? {
        guard let slidingLayers else { return slidingWindow }
        return slidingLayers.contains(layer) ? slidingWindow : nil
    }

    public func isDense(_ layer: Int) -> Bool {
        var (low, high) = (0, denseLayers.count)
        while low < high {
            let middle = (low + high) / 2
            if denseLayers[middle] < layer { low = middle + 1 } else { high = middle }
        }
        return low < denseLayers.count && denseLayers[low] == layer
    }

    /// Problems no checkpoint of this configuration can avoid.
    public var inconsistencies: [String] {
        var problems: [String] = []
        if expertsPerToken > numExperts {
            problems.append("experts per token (\(expertsPerToken)) exceed the experts (\(numExperts))")
        }
        if numKVHeads > 0, numHeads % numKVHeads != 0 {
            problems.append("attention heads (\(numHeads)) are not divisible by key/value heads (\(numKVHeads))")
        }
        if numKVHeads < 1 || numHeads < 1 { problems.append("there must be at least one attention and one key/value head") }
        if headDim < 2 || headDim % 2 != 0 { problems.append("head_dim (\(headDim)) must be even and positive for rotary embeddings") }
        if !(ropeTheta > 0) { problems.append("rope_theta (\(ropeTheta)) must be positive") }
        if !(rmsNormEps >= 0) { problems.append("rms_norm_eps (\(rmsNormEps)) must not be negative") }
        if !(logitsScaling != 0) { problems.append("logits_scaling must not be 0") }
        return problems
    }

    /// Every canonical tensor of one layer, in a stable order (Mixtral's first, the others after).
    func layerTensors(_ l: Int) -> [TensorRequirement] {
        func t(_ name: String, _ shape: [Int]) -> TensorRequirement { TensorRequirement(name: "layers.\(l)." + name, shape: shape) }
        let (h, e, i) = (hiddenSize, numExperts, expertIntermediate)
        let (q, kv) = (numHeads * headDim, numKVHeads * headDim)
        var list = [t("attn_norm", [h])]
        if let mla = latentAttention {
            let heads = numHeads
            if let rank = mla.qLoraRank {
                list += [t("attn.q_a", [rank, h]), t("attn.q_a_norm", [rank]), t("attn.q_b", [heads * mla.qkHeadDim, rank])]
                if mla.bias { list.append(t("attn.q_a_bias", [rank])) }
            } else {
                list.append(t("attn.q", [heads * mla.qkHeadDim, h]))
            }
            list += [
                t("attn.kv_a", [mla.kvLoraRank + mla.qkRopeHeadDim, h]), t("attn.kv_a_norm", [mla.kvLoraRank]),
                t("attn.k_b", [heads, mla.qkNopeHeadDim, mla.kvLoraRank]), t("attn.v_b", [heads, mla.vHeadDim, mla.kvLoraRank]),
                t("attn.o", [h, heads * mla.vHeadDim]),
            ]
            if mla.bias { list += [t("attn.kv_a_bias", [mla.kvLoraRank + mla.qkRopeHeadDim]), t("attn.o_bias", [h])] }
        } else {
            list += [t("attn.q", [q, h]), t("attn.k", [kv, h]), t("attn.v", [kv, h]), t("attn.o", [h, q])]
        }
        if attentionBias { list += [t("attn.q_bias", [q]), t("attn.k_bias", [kv]), t("attn.v_bias", [kv])] }
        if attentionOutputBias { list.append(t("attn.o_bias", [h])) }
        if attentionSinks { list.append(t("attn.sinks", [numHeads])) }
        switch qkNorm {
        case .none: break
        case .perHead: list += [t("attn.q_norm", [headDim]), t("attn.k_norm", [headDim])]
        case .fullWidth: list += [t("attn.q_norm", [q]), t("attn.k_norm", [kv])]
        }
        list.append(t("ffn_norm", [h]))
        if isDense(l) {
            let d = denseIntermediate
            return list + [t("mlp.gate", [d, h]), t("mlp.up", [d, h]), t("mlp.down", [h, d])]
        }
        list.append(t("moe.router", [e, h]))
        if routerLogitBias { list.append(t("moe.router_logit_bias", [e])) }
        list += [t("moe.gate", [e, i, h]), t("moe.up", [e, i, h]), t("moe.down", [e, h, i])]
        if expertBiases { list += [t("moe.gate_bias", [e, i]), t("moe.up_bias", [e, i]), t("moe.down_bias", [e, h])] }
        if routerSelectionBias { list.append(t("moe.router_bias", [e])) }
        if let shared = sharedExpert {
            let s = shared.intermediate
            list += [t("moe.shared.gate", [s, h]), t("moe.shared.up", [s, h]), t("moe.shared.down", [h, s])]
            if shared.gated { list.append(t("moe.shared_gate", [1, h])) }
        }
        return list
    }

    /// Every canonical tensor with its shape, in a stable order.
    public var canonicalTensors: [TensorRequirement] {
        var list = [TensorRequirement(name: "embed", shape: [vocabSize, hiddenSize])]
        for l in 0..<numLayers { list += layerTensors(l) }
        list.append(TensorRequirement(name: "final_norm", shape: [hiddenSize]))
        if !tieWordEmbeddings { list.append(TensorRequirement(name: "lm_head", shape: [vocabSize, hiddenSize])) }
        return list
    }

    /// Counted without listing every layer: a sparse and (if any) a dense layer are listed once
    /// and multiplied, so a config that plans 2^24 layers is sized at once.
    public var plannedScale: (tensors: Int, parameters: Int)? {
        var shape = self
        shape.numLayers = 0
        guard let base = DecoderConfig.scale(shape.canonicalTensors) else { return nil }
        let denseCount = denseLayers.count
        var tensors = Checked(base.tensors)
        var parameters = Checked(base.parameters)
        for (isDenseLayer, count) in [(false, numLayers - denseCount), (true, denseCount)] where count > 0 {
            shape.denseLayers = isDenseLayer ? [0] : []
            guard let layer = DecoderConfig.scale(shape.layerTensors(0)) else { return nil }
            tensors = tensors + Checked(layer.tensors) * count
            parameters = parameters + Checked(layer.parameters) * count
        }
        guard let tensors = tensors.value, let parameters = parameters.value else { return nil }
        return (tensors, parameters)
    }

    static func scale(_ tensors: [TensorRequirement]) -> (tensors: Int, parameters: Int)? {
        var parameters = Checked(0)
        for tensor in tensors { parameters = parameters + Checked(try? Shape.elementCount(tensor.shape)) }
        return parameters.value.map { (tensors.count, $0) }
    }
}

/// A family whose models are `DecoderConfig`s: its canonical tensors, scale, rotary head size,
/// MoE roles and forward pass come from there.
public protocol DecoderArchitecture: Architecture {
    var decoder: DecoderConfig { get }
}

extension DecoderArchitecture {
    public var canonicalTensors: [TensorRequirement] { decoder.canonicalTensors }
    public var plannedScale: (tensors: Int, parameters: Int)? { decoder.plannedScale }
    public var rotaryHeadDim: Int { decoder.headDim }
    public var routedExpertsPerToken: Int? { decoder.expertsPerToken }
    public static var moeRoles: MoERoles? { MoERoles(routerSuffix: "moe.router", expertInfix: "moe.", sharedInfix: "moe.shared") }
    public var moeRouting: MoERouting? {
        let d = decoder
        return MoERouting(
            router: d.router, sharedExpertRows: d.sharedExpert?.intermediate, sharedExpertGated: d.sharedExpert?.gated ?? false,
            denseLayers: d.denseLayers)
    }

    public func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        try DecoderForward(model, config: decoder)
    }
}
