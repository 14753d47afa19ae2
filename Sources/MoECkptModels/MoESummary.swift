/// The MoE structure read off tensor names and shapes alone.
public struct MoESummary: Sendable, Codable, Equatable {
    public var layout: String
    public var layers: Int
    /// Experts per MoE layer (the largest count seen).
    public var expertsPerLayer: Int
    /// Shape of one router, e.g. [8, 4096].
    public var routerShape: [Int]
    /// Each distinct expert projection name with its shape (per expert; stacked tensors drop the
    /// leading expert dimension).
    public var expertProjections: [String: [Int]]
    public var expertParameters: Int
    public var totalParameters: Int
    /// Experts each token uses, when known from config.json.
    public var expertsPerToken: Int?

    /// Parameters one token touches: everything but the unused experts' weights.
    public func activeParameters(expertsPerToken k: Int) -> Int {
        guard expertsPerLayer > 0 else { return totalParameters }
        return totalParameters - expertParameters + expertParameters / expertsPerLayer * min(k, expertsPerLayer)
    }

    /// Recognises the first layout whose router and expert names the tensors use.
    public static func detect(tensors: [(name: String, shape: [Int])]) -> MoESummary? {
        let total = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        for layout in MoENamingLayout.all {
            var layers = Set<Int>()
            var routerShape: [Int] = []
            var expertsByLayer: [Int: Set<Int>] = [:]
            var stackedCount: [Int: Int] = [:]
            var projections: [String: [Int]] = [:]
            var expertParameters = 0
            for (name, shape) in tensors {
                if let match = layout.routers.lazy.compactMap({ $0.match(name) }).first, let block = match.block {
                    layers.insert(block)
                    routerShape = shape
                } else if let (pattern, match) = firstMatch(layout.experts, name), let block = match.block,
                          let expert = match.expert {
                    layers.insert(block)
                    expertsByLayer[block, default: []].insert(expert)
                    projections[projectionName(pattern)] = shape
                    expertParameters += shape.reduce(1, *)
                } else if let (pattern, match) = firstMatch(layout.stackedExperts, name), let block = match.block,
                          let experts = shape.first {
                    layers.insert(block)
                    stackedCount[block] = max(stackedCount[block] ?? 0, experts)
                    projections[projectionName(pattern)] = Array(shape.dropFirst())
                    expertParameters += shape.reduce(1, *)
                }
            }
            guard !routerShape.isEmpty, !projections.isEmpty else { continue }
            let experts = max(expertsByLayer.values.map(\.count).max() ?? 0, stackedCount.values.max() ?? 0)
            return MoESummary(layout: layout.name, layers: layers.count, expertsPerLayer: experts,
                              routerShape: routerShape, expertProjections: projections,
                              expertParameters: expertParameters, totalParameters: total, expertsPerToken: nil)
        }
        return nil
    }

    private static func firstMatch(_ patterns: [NamePattern], _ name: String) -> (NamePattern, NamePattern.Match)? {
        for pattern in patterns { if let match = pattern.match(name) { return (pattern, match) } }
        return nil
    }

    /// `w1` from `...experts.{xid}.w1.weight`, `gate_up_proj` from `...experts.gate_up_proj`.
    private static func projectionName(_ pattern: NamePattern) -> String {
        let parts = pattern.template.split(separator: ".")
        let meaningful = parts.last == "weight" ? parts.dropLast() : parts[...]
        return String(meaningful.last ?? "")
    }
}
