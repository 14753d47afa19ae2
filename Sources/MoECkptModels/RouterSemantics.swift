/// How a router turns its logits into experts and weights, as data: the families differ only in
/// these choices, and a conversion that loses one (`norm_topk_prob` dropped, softmax read as
/// sigmoid) changes what the model computes.
public struct RouterSemantics: Sendable, Equatable, Encodable, CustomStringConvertible {
    /// What the router's logits become.
    public enum Scoring: String, Sendable, Encodable, CaseIterable {
        case softmax
        case sigmoid
    }

    /// Which experts a token goes to.
    public enum Selection: String, Sendable, Encodable {
        /// Score every expert, then keep the k best scores (Mixtral, Qwen, OLMoE).
        case topKOfScores = "top-k of scores"
        /// Keep the k largest logits, then score only those (GraniteMoE, gpt-oss).
        case scoresOfTopK = "scores of top-k logits"
    }

    public var scoring: Scoring
    public var selection: Selection
    /// Divide the k weights by their sum (`norm_topk_prob`; Mixtral always).
    public var renormalize: Bool
    /// Multiply the weights by this (`routed_scaling_factor`).
    public var scale: Double
    /// A per-expert bias added to the scores for choosing the experts only (DeepSeek-V3's
    /// `e_score_correction_bias`); the weights come from the unbiased scores.
    public var selectionBias: Bool
    /// Group-limited selection (DeepSeek-V3): the experts split into `count` groups, each scored
    /// by the sum of its two best (biased) scores; only the `used` best groups' experts compete.
    public var groups: Groups?

    public struct Groups: Sendable, Equatable, Encodable {
        public var count: Int
        public var used: Int

        public init(count: Int, used: Int) {
            self.count = count
            self.used = used
        }
    }

    public init(
        scoring: Scoring = .softmax, selection: Selection = .topKOfScores, renormalize: Bool, scale: Double = 1,
        selectionBias: Bool = false, groups: Groups? = nil
    ) {
        self.scoring = scoring
        self.selection = selection
        self.renormalize = renormalize
        self.scale = scale
        self.selectionBias = selectionBias
        self.groups = groups
    }

    /// Mixtral's: softmax over every expert, top-k, renormalised.
    public static let mixtral = RouterSemantics(renormalize: true)

    /// GraniteMoE's and gpt-oss's: the k largest logits, softmax over those k.
    public static let softmaxOfTopKLogits = RouterSemantics(selection: .scoresOfTopK, renormalize: false)

    public var description: String {
        var text = "\(scoring.rawValue), \(selection.rawValue)"
        if selection == .topKOfScores { text += renormalize ? ", renormalised" : ", not renormalised" }
        if selectionBias { text += ", selection biased" }
        if let groups { text += ", \(groups.used) of \(groups.count) groups" }
        if scale != 1 { text += ", scaled by \(scale)" }
        return text
    }
}

/// How a model routes, for reports: its router, its shared expert and its dense layers.
public struct MoERouting: Sendable, Equatable, Encodable {
    public let router: RouterSemantics
    /// Rows of the shared expert every token also goes through (nil: none).
    public let sharedExpertRows: Int?
    /// Whether the shared expert's output is scaled by sigmoid(shared_expert_gate(x)).
    public let sharedExpertGated: Bool
    /// Layers that run a dense MLP instead of experts.
    public let denseLayers: [Int]

    public init(router: RouterSemantics, sharedExpertRows: Int?, sharedExpertGated: Bool, denseLayers: [Int]) {
        self.router = router
        self.sharedExpertRows = sharedExpertRows
        self.sharedExpertGated = sharedExpertGated
        self.denseLayers = denseLayers
    }

    /// One line: `softmax, top-k of scores, renormalised; shared expert of 12 rows (sigmoid-gated); dense layers 1`.
    public var summary: String {
        var parts = [router.description]
        if let rows = sharedExpertRows { parts.append("shared expert of \(rows) rows" + (sharedExpertGated ? " (sigmoid-gated)" : "")) }
        if !denseLayers.isEmpty {
            let shown = denseLayers.prefix(16).map(String.init).joined(separator: ", ")
            parts.append("dense layers " + shown + (denseLayers.count > 16 ? ", ..." : ""))
        }
        return parts.joined(separator: "; ")
    }
}
