/// The MoE structure read off tensor names and shapes alone.
public struct MoESummary: Sendable, Encodable, Equatable {
    /// The title of the layout the names are in.
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

    /// Parameters one token touches: everything but the unused experts' weights.
    public func activeParameters(expertsPerToken k: Int) -> Int {
        guard expertsPerLayer > 0 else { return totalParameters }
        return totalParameters - expertParameters + expertParameters / expertsPerLayer * min(k, expertsPerLayer)
    }

    /// Reads the structure off names and shapes, using an architecture's layout tables: the
    /// layout that accounts for the most names, its router entry and its expert entries.
    public static func detect(tensors: [(name: String, shape: [Int])], as architecture: any Architecture.Type) -> MoESummary? {
        guard let roles = architecture.moeRoles,
            let layout = NamingLayout.detect(tensors.map(\.name), among: architecture.layouts)
        else { return nil }
        let routers = layout.entries.filter { $0.canonical[0].template.hasSuffix(roles.routerSuffix) }.map(\.stored)
        let expertEntries = layout.entries.filter { $0.canonical.contains { roles.isRoutedExpert($0.template) } }
        var layers = Set<Int>()
        var routerShape: [Int] = []
        var expertsByLayer: [Int: Set<Int>] = [:]
        var stackedCount: [Int: Int] = [:]
        var projections: [String: [Int]] = [:]
        var expertParameters = 0
        for (name, shape) in tensors {
            if let block = firstMatch(routers, name)?.1.block {
                layers.insert(block)
                routerShape = shape
            } else if let (entry, match) = firstMatch(expertEntries.map(\.stored), name), let block = match.block {
                layers.insert(block)
                expertParameters += shape.reduce(1, *)
                if let expert = match.expert {
                    expertsByLayer[block, default: []].insert(expert)
                    projections[projectionName(entry)] = shape
                } else if let experts = shape.first {
                    stackedCount[block] = max(stackedCount[block] ?? 0, experts)
                    projections[projectionName(entry)] = Array(shape.dropFirst())
                }
            }
        }
        guard !routerShape.isEmpty, !projections.isEmpty else { return nil }
        let total = tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let experts = max(expertsByLayer.values.map(\.count).max() ?? 0, stackedCount.values.max() ?? 0)
        return MoESummary(
            layout: layout.title, layers: layers.count, expertsPerLayer: experts,
            routerShape: routerShape, expertProjections: projections,
            expertParameters: expertParameters, totalParameters: total)
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
