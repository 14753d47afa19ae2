import Foundation
import MoECkptForward

/// The outcome of comparing one output tensor with its expected values.
public struct TensorComparison: Encodable, Sendable {
    public let name: String
    public let shape: [Int]
    public let expectedShape: [Int]
    public let maxAbsoluteError: Double
    public let maxRelativeError: Double
    /// Index of the element furthest outside the tolerance (or of the largest error when all pass).
    public let worstIndex: [Int]
    public let passed: Bool
    /// Σ(actual - expected)² / Σ expected² (0 when both are zero; infinite for other shapes).
    public let nmse: Double
    /// Of the last dimension's rows (a token's logits), the share whose largest entry is at the
    /// same index in both.
    public let top1Agreement: Double
}

/// One model checked against one expected file.
public struct VerifyReport: Encodable, Sendable {
    public let model: String
    public let architecture: String
    public let layout: String
    public let expected: String
    public let atol: Double
    public let rtol: Double
    public let reference: String?
    public let comparisons: [TensorComparison]
    /// Whether the model's weights are quantized (ggml or MXFP4 blocks, MLX codes): the report then adds the
    /// logits' NMSE and top-1 agreement, the figures quoted for quantized parity.
    public var quantized = false
    public var passed: Bool { comparisons.allSatisfy(\.passed) }

    /// The `--json` form's version: raised when a field changes meaning or goes away.
    public static let schemaVersion = 1

    enum CodingKeys: String, CodingKey {
        case schemaVersion, model, architecture, layout, expected, atol, rtol, reference, comparisons, quantized, passed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.schemaVersion, forKey: .schemaVersion)
        try container.encode(model, forKey: .model)
        try container.encode(architecture, forKey: .architecture)
        try container.encode(layout, forKey: .layout)
        try container.encode(expected, forKey: .expected)
        try container.encode(atol, forKey: .atol)
        try container.encode(rtol, forKey: .rtol)
        try container.encodeIfPresent(reference, forKey: .reference)
        try container.encode(comparisons, forKey: .comparisons)
        try container.encode(quantized, forKey: .quantized)
        try container.encode(passed, forKey: .passed)
    }
}

/// Why a verification cannot be made (bad input: exit status 2).
public enum VerifyError: Error, CustomStringConvertible, Equatable, Sendable {
    case noExpectedFile
    case unknownKey(String)
    case notANumber(String, String)
    case nothingToCompare
    case notProduced(String)

    public var description: String {
        switch self {
        case .noExpectedFile: "no expected outputs: pass --expected FILE or put expected.safetensors in the model directory"
        case .unknownKey(let key):
            "holds \"\(key)\", which verify does not understand (inputs: input_ids or inputs; outputs: logits, hidden_states.N, router_logits.N, router_logits, outputs, aux_loss, router_z_loss)"
        case .notANumber(let key, let value): "metadata \(key) = \"\(value)\" is not a finite, non-negative number"
        case .nothingToCompare: "holds no outputs to compare"
        case .notProduced(let key): "expects \"\(key)\", which this model does not produce"
        }
    }
}

public enum Verifier {
    public static let expectedFileName = ModelDirectory.expectedOutputsName
    public static let defaultTolerance = 1e-4

    /// Runs `modelPath` on the inputs of its expected file and compares every output there.
    public static func verify(
        _ modelPath: String, expected expectedPath: String? = nil, atol: Double? = nil,
        rtol: Double? = nil, options: RunOptions = RunOptions(), loader: ModelLoader = .standard
    ) throws(FileError) -> VerifyReport {
        let model = try loader.load(modelPath)
        let runner = try ModelRunner(model)  // checks a .moeckpt's checksums first
        let expectedFile: String
        if let expectedPath { expectedFile = expectedPath } else { expectedFile = try locateExpected(modelPath, model) }
        let expected = try Checkpoint.open(expectedFile)
        let fail = { (error: VerifyError) in FileError(path: expectedFile, problem: error) }

        let inputNames = Set(InputKey.allCases.map(\.rawValue))
        let outputNames = expected.tensors.map(\.name).filter { !inputNames.contains($0) }
        var outputKeys: [(name: String, key: OutputKey)] = []
        for name in outputNames {
            guard let key = OutputKey(name) else { throw fail(.unknownKey(name)) }
            outputKeys.append((name, key))
        }
        guard !outputKeys.isEmpty else { throw fail(.nothingToCompare) }
        func tolerance(_ key: String, _ flag: Double?) throws(FileError) -> Double {
            if let flag { return flag }
            guard let text = expected.metadata[key] else { return defaultTolerance }
            guard let value = Double(text), value.isFinite, value >= 0 else { throw fail(.notANumber(key, text)) }
            return value
        }
        let (absolute, relative) = (try tolerance("atol", atol), try tolerance("rtol", rtol))

        var runOptions = options
        runOptions.auxLosses = outputKeys.contains { $0.key == .routerZLoss || $0.key == .auxLoss }
        let actual = try runner.run(inputsFrom: expected, options: runOptions)

        var comparisons: [TensorComparison] = []
        for (name, key) in outputKeys.sorted(by: { naturalOrder($0.name, $1.name) }) {
            // A key spelled otherwise than moeckpt writes it (`hidden_states.03`) is not one it produces.
            guard key.description == name, let produced = actual[key] else { throw fail(.notProduced(name)) }
            let reference = expected.tensor(named: name)!
            comparisons.append(
                compare(
                    name, produced, HostTensor(shape: reference.shape, values: try f32(reference, in: expectedFile)),
                    atol: absolute, rtol: relative))
        }
        var report = VerifyReport(
            model: modelPath, architecture: model.architecture.modelType, layout: model.layout.key.rawValue,
            expected: expectedFile, atol: absolute, rtol: relative,
            reference: expected.metadata["reference"], comparisons: comparisons)
        report.quantized =
            !model.quantized.isEmpty || model.checkpoint.tensors.contains { $0.blocks != nil }
            || model.tensors.contains { $0.mlxQuantization != nil }
        return report
    }

    static func locateExpected(_ modelPath: String, _ model: LoadedModel) throws(FileError) -> String {
        let directory = FileSystem.isDirectory(modelPath) ? modelPath : ModelDirectory.of(model.checkpoint)
        let candidate = FileSystem.join(directory, expectedFileName)
        guard FileSystem.exists(candidate) else { throw FileError(path: modelPath, problem: VerifyError.noExpectedFile) }
        return candidate
    }

    /// numpy's allclose, element by element: |actual - expected| <= atol + rtol * |expected|.
    /// NaN never passes; shapes must match.
    public static func compare(_ name: String, _ actual: HostTensor, _ expected: HostTensor, atol: Double, rtol: Double) -> TensorComparison
    {
        guard actual.shape == expected.shape, actual.values.count == expected.values.count else {
            return TensorComparison(
                name: name, shape: actual.shape, expectedShape: expected.shape, maxAbsoluteError: .infinity,
                maxRelativeError: .infinity, worstIndex: [], passed: false, nmse: .infinity, top1Agreement: 0)
        }
        var squaredError = 0.0, squaredExpected = 0.0
        var maxAbsolute = 0.0, maxRelative = 0.0
        var worst = 0, worstExcess = -Double.infinity
        var passed = true
        for i in 0..<actual.values.count {
            let (a, e) = (Double(actual.values[i]), Double(expected.values[i]))
            let error = (a - e).magnitude
            squaredError += error * error
            squaredExpected += e * e
            let allowed = atol + rtol * e.magnitude
            let ok = error <= allowed  // false for NaN
            if !ok { passed = false }
            let excess = error.isNaN ? .infinity : error - allowed
            if excess > worstExcess { worstExcess = excess; worst = i }
            maxAbsolute = max(maxAbsolute, error.isNaN ? .infinity : error)
            if e != 0 { maxRelative = max(maxRelative, error.isNaN ? .infinity : error / e.magnitude) }
        }
        let width = max(actual.shape.last ?? 1, 1), rows = actual.values.count / width
        func argmax(_ values: [Float], _ row: Int) -> Int {
            (0..<width).max { values[row * width + $0] < values[row * width + $1] || values[row * width + $0].isNaN } ?? 0
        }
        let agreeing = (0..<rows).filter { argmax(actual.values, $0) == argmax(expected.values, $0) }.count
        return TensorComparison(
            name: name, shape: actual.shape, expectedShape: expected.shape, maxAbsoluteError: maxAbsolute,
            maxRelativeError: maxRelative, worstIndex: unflatten(worst, actual.shape), passed: passed,
            nmse: squaredError == 0 ? 0 : squaredExpected == 0 ? .infinity : squaredError / squaredExpected,
            top1Agreement: rows == 0 ? 1 : Double(agreeing) / Double(rows))
    }

    static func unflatten(_ index: Int, _ shape: [Int]) -> [Int] {
        var rest = index
        var out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            out[d] = rest % shape[d]
            rest /= shape[d]
        }
        return out
    }

    /// The report as text: one line per tensor and a verdict.
    public static func render(_ report: VerifyReport) -> String {
        var lines = [
            "\(report.model): \(report.architecture), names \(report.layout)",
            "  expected \(report.expected) (atol \(report.atol), rtol \(report.rtol))"
                + (report.reference.map { "; reference: \($0)" } ?? ""),
        ]
        let rows =
            [["TENSOR", "SHAPE", "MAX ABS ERR", "MAX REL ERR", "WORST AT", "RESULT"]]
            + report.comparisons.map { c in
                [
                    TerminalText.escaped(c.name), c.shape == c.expectedShape ? "\(c.shape)" : "\(c.shape) vs expected \(c.expectedShape)",
                    scientific(c.maxAbsoluteError), scientific(c.maxRelativeError), "\(c.worstIndex)", c.passed ? "pass" : "FAIL",
                ]
            }
        let widths = (0..<6).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(
                "  "
                    + row.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - $1.count) }
                    .joined(separator: "  ").replacingTrailingSpaces())
        }
        if report.quantized, let logits = report.comparisons.first(where: { $0.name == "logits" }) {
            lines.append(
                "  quantized weights: logits NMSE \(scientific(logits.nmse)), top-1 agreement "
                    + String(format: "%.1f%%", 100 * logits.top1Agreement))
        }
        let failed = report.comparisons.filter { !$0.passed }.count
        lines.append(
            "  "
                + (failed == 0
                    ? "pass: \(report.comparisons.count) tensors match"
                    : "FAIL: \(failed) of \(report.comparisons.count) tensors differ"))
        return lines.map(TerminalText.escaped).joined(separator: "\n")
    }

    static func scientific(_ value: Double) -> String {
        value.isNaN ? "nan" : value.isInfinite ? "inf" : String(format: "%.2e", value)
    }
}
