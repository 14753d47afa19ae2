/// Both models run on the same inputs: each output side by side, layer by layer.
public struct ForwardComparison: Encodable, Sendable {
    /// One output of both models (`hidden_states.N`, `router_logits.N`, `logits`).
    public struct Output: Encodable, Sendable {
        public let name: String
        public let maxAbs: Double
        public let nmse: Double
        /// Router logits: the share of tokens whose top-k experts are the same set in both;
        /// logits: the share of positions whose most likely token is the same.
        public let agreement: Double?
        /// Within the tolerance (nil: figures only).
        public let passed: Bool?

        enum CodingKeys: String, CodingKey { case name, maxAbs = "max_abs", nmse, agreement, passed }
    }

    public let input: String
    public let outputs: [Output]
    public let tolerance: WeightTolerance?
    /// The first output, in layer order, beyond the tolerance: where the two models part.
    public var firstDivergence: String? { outputs.first { $0.passed == false }?.name }

    enum CodingKeys: String, CodingKey { case input, outputs, atol, rtol, firstDivergence = "first_divergence" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(outputs, forKey: .outputs)
        try c.encodeIfPresent(tolerance?.atol, forKey: .atol)
        try c.encodeIfPresent(tolerance?.rtol, forKey: .rtol)
        try c.encodeIfPresent(firstDivergence, forKey: .firstDivergence)
    }

    /// Runs both on `inputs` (a file with input_ids or inputs) or on `tokens` seeded token ids.
    static func run(
        _ a: LoadedModel, _ b: LoadedModel, inputs: String?, tokens: Int, tolerance: WeightTolerance?, topK: Int,
        options: RunOptions
    ) throws(FileError) -> ForwardComparison? {
        let (runnerA, runnerB) = (try ModelRunner(a), try ModelRunner(b))
        let (outputsA, outputsB): ([OutputKey: HostTensor], [OutputKey: HostTensor])
        let description: String
        if let inputs {
            let file = try Checkpoint.open(inputs)
            (outputsA, outputsB) = (
                try runnerA.run(inputsFrom: file, options: options), try runnerB.run(inputsFrom: file, options: options)
            )
            description = inputs
        } else {
            guard runnerA.takesTokenIDs, let vocabulary = a.tensor("embed")?.shape.first, vocabulary > 0 else { return nil }
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            let ids = (0..<tokens).map { _ -> Int in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int((state >> 33) % UInt64(vocabulary))
            }
            (outputsA, outputsB) = (
                try runnerA.run(tokenIDs: [ids], source: a.checkpoint.path, options: options),
                try runnerB.run(tokenIDs: [ids], source: b.checkpoint.path, options: options)
            )
            description = "\(tokens) seeded token ids"
        }
        func order(_ key: OutputKey) -> (Int, Int) {
            switch key {
            case .hiddenStates(let n): (n, 0)
            case .layerRouterLogits(let n): (n, 1)
            default: (Int.max, 2)
            }
        }
        let keys = outputsA.keys.filter { outputsB[$0] != nil }.sorted { order($0) < order($1) }
        var outputs: [Output] = []
        for key in keys {
            let (x, y) = (outputsA[key]!, outputsB[key]!)
            guard x.shape == y.shape else { continue }
            var stats = Statistics()
            stats.add(x.values, y.values)
            let width = x.shape.last ?? 1
            let agreement: Double? =
                switch key {
                case .layerRouterLogits, .routerLogits: topKAgreement(x.values, y.values, width: width, k: topK)
                case .logits: topKAgreement(x.values, y.values, width: width, k: 1)
                default: nil
                }
            let passed = tolerance.map { t in zip(x.values, y.values).allSatisfy { t.holds($0, $1) } }
            outputs.append(Output(name: key.description, maxAbs: stats.maxAbs, nmse: stats.nmse, agreement: agreement, passed: passed))
        }
        return ForwardComparison(input: description, outputs: outputs, tolerance: tolerance)
    }

    /// The share of rows whose k largest entries (ties to the lower index) are the same set.
    static func topKAgreement(_ a: [Float], _ b: [Float], width: Int, k: Int) -> Double {
        guard width > 0, !a.isEmpty else { return 1 }
        func top(_ row: ArraySlice<Float>) -> Set<Int> {
            Set(row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(k).map { $0 - row.startIndex })
        }
        let rows = a.count / width
        let same = (0..<rows).filter { r in top(a[(r * width)..<((r + 1) * width)]) == top(b[(r * width)..<((r + 1) * width)]) }
        return Double(same.count) / Double(rows)
    }
}
