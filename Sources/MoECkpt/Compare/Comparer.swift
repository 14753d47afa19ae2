import MoECkptForward

/// `moeckpt compare A B`: two checkpoints of one model (any format, layout, dtype), their
/// descriptions and weights side by side, with the likely conversion mistake named where the
/// weights tell it (docs/VERIFY.md, "Comparing two checkpoints").
public enum Comparer {
    public static func compare(
        _ a: String, _ b: String, tolerance: WeightTolerance? = nil, inputs: String? = nil, tokens: Int = 16,
        options: RunOptions = RunOptions(), loader: ModelLoader = .standard
    ) throws(FileError) -> CompareReport {
        // B may lack tensors, hold others, or hold some transposed: all named, then not run.
        let first = try loader.load(a)
        let (second, deviations) = try loader.loadLeniently(b)
        guard first.architecture.modelType == second.architecture.modelType else {
            throw FileError(
                path: b, problem: CompareError.otherArchitecture(first.architecture.modelType, second.architecture.modelType))
        }
        let descriptions = DescriptionDifference.between(first, second)
        let weights = try WeightComparison.between(first, second, deviations: deviations, tolerance: tolerance)
        // Outputs are checked against a tolerance when one is given, or when every weight pair
        // is of one dtype (verify's default then); otherwise (casts, quantization) they report.
        let exact = weights.allSatisfy { $0.dtypeA == $0.dtypeB && $0.result != .reported }
        let forward =
            deviations.isEmpty
            ? try ForwardComparison.run(
                first, second, inputs: inputs, tokens: tokens,
                tolerance: tolerance ?? (exact ? WeightTolerance(atol: 1e-4, rtol: 1e-4) : nil),
                topK: first.architecture.routedExpertsPerToken ?? 1, options: options) : nil
        let notes = deviations.isEmpty ? [] : ["forward passes not run: " + Self.summary(deviations)]
        return CompareReport(
            a: a, b: b, architecture: first.architecture.modelType, layoutA: first.layout.key.rawValue,
            layoutB: second.layout.key.rawValue, descriptions: descriptions, weights: weights, forward: forward, notes: notes)
    }

    /// Why B cannot run as it is stored.
    static func summary(_ deviations: LayoutMapper.Deviations) -> String {
        let counts = [
            (deviations.missing.count, "missing"), (deviations.unexpected.count, "not in its layout"),
            (deviations.transposed.count, "transposed"), (deviations.misshapen.count, "of other shapes"),
        ]
        return "B has tensors " + counts.filter { $0.0 > 0 }.map { "\($1) (\($0))" }.joined(separator: ", ")
    }

    /// The report as text: differences only (`--json` has every tensor).
    public static func render(_ report: CompareReport) -> String {
        let escaped = TerminalText.escaped
        var lines = [
            "A: \(escaped(report.a)) (\(report.architecture), names \(report.layoutA))",
            "B: \(escaped(report.b)) (\(report.architecture), names \(report.layoutB))",
        ]
        lines.append("descriptions: " + (report.descriptions.isEmpty ? "the same" : "\(report.descriptions.count) differences"))
        for d in report.descriptions {
            lines.append(
                "  \(escaped(d.key)): \(escaped(d.a ?? "(absent)")) | \(escaped(d.b ?? "(absent)"))"
                    + (d.affectsOutputs ? "" : " (does not change the outputs)"))
        }
        let differing = report.weights.filter { $0.result != .same }
        let reported = differing.filter { $0.result == .reported }.count
        lines.append(
            "weights: \(report.weights.count) tensors, "
                + (differing.isEmpty
                    ? "all the same within tolerance"
                    : "\(differing.count - reported) differ" + (reported > 0 ? ", \(reported) reported without a tolerance" : "")))
        if !differing.isEmpty {
            let rows =
                [["TENSOR", "SHAPE A / B", "DTYPE A / B", "MAX ABS", "NMSE", "COSINE", "RESULT"]]
                + differing.map { w in
                    [
                        escaped(w.name),
                        w.shapeA == w.shapeB
                            ? "\(w.shapeA ?? [])" : "\(w.shapeA.map { "\($0)" } ?? "-") / \(w.shapeB.map { "\($0)" } ?? "-")",
                        "\(w.dtypeA ?? "-") / \(w.dtypeB ?? "-")", w.maxAbs.map(Verifier.scientific) ?? "-",
                        w.nmse.map(Verifier.scientific) ?? "-", w.cosine.map { String(format: "%.6f", $0) } ?? "-",
                        w.result.rawValue,
                    ]
                }
            let widths = (0..<7).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                lines.append(
                    "  "
                        + row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
                        .replacingTrailingSpaces())
            }
        }
        if let forward = report.forward {
            let tolerance = forward.tolerance.map { "atol \($0.atol), rtol \($0.rtol)" } ?? "figures only"
            lines.append("forward on \(escaped(forward.input)) (\(tolerance)):")
            let rows =
                [["OUTPUT", "MAX ABS", "NMSE", "AGREEMENT", "RESULT"]]
                + forward.outputs.map { o in
                    [
                        o.name, Verifier.scientific(o.maxAbs), Verifier.scientific(o.nmse),
                        o.agreement.map { String(format: "%.1f%%", 100 * $0) } ?? "-", o.passed.map { $0 ? "pass" : "FAIL" } ?? "-",
                    ]
                }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                lines.append(
                    "  "
                        + row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }.joined(separator: "  ")
                        .replacingTrailingSpaces())
            }
            if let first = forward.firstDivergence { lines.append("  first divergence: \(first)") }
        }
        lines += report.notes.map { escaped($0) }
        let mistakes = report.mistakes
        if !mistakes.isEmpty {
            lines.append("likely mistakes:")
            lines += mistakes.map { "  - " + escaped($0) }
        }
        lines.append(report.equivalent ? "equivalent" : "NOT equivalent")
        return lines.joined(separator: "\n")
    }
}

public enum CompareError: Error, CustomStringConvertible, Sendable {
    case otherArchitecture(String, String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .otherArchitecture(let a, let b): "it is \(b) and the other checkpoint \(a): compare takes two checkpoints of one architecture"
        case .unreadable(let why): "cannot read its values: \(why)"
        }
    }
}

public struct CompareReport: Encodable, Sendable {
    public let a: String
    public let b: String
    public let architecture: String
    public let layoutA: String
    public let layoutB: String
    public let descriptions: [DescriptionDifference]
    public let weights: [WeightComparison]
    /// Both models on the same inputs (nil for a module without --input, or B not as its layout has it).
    public let forward: ForwardComparison?
    /// What was not done, and why.
    public let notes: [String]

    /// The likely mistakes the weights name, each once.
    public var mistakes: [String] {
        var seen = Set<String>()
        return weights.compactMap(\.mistake).filter { seen.insert($0).inserted }
    }

    /// No description differs and every weight is there and the same within its tolerance
    /// (weights compared without one, quantized against float, only report).
    public var equivalent: Bool {
        descriptions.allSatisfy { !$0.affectsOutputs } && weights.allSatisfy { $0.result == .same || $0.result == .reported }
            && forward?.firstDivergence == nil
    }

    enum CodingKeys: String, CodingKey {
        case a, b, architecture, layoutA = "layout_a", layoutB = "layout_b", descriptions, weights, forward, notes, mistakes,
            equivalent
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(a, forKey: .a)
        try c.encode(b, forKey: .b)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(layoutA, forKey: .layoutA)
        try c.encode(layoutB, forKey: .layoutB)
        try c.encode(descriptions, forKey: .descriptions)
        try c.encode(weights, forKey: .weights)
        try c.encodeIfPresent(forward, forKey: .forward)
        try c.encode(notes, forKey: .notes)
        try c.encode(mistakes, forKey: .mistakes)
        try c.encode(equivalent, forKey: .equivalent)
    }
}
