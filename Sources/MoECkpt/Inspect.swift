#if canImport(Glibc)
import Glibc
#endif

/// What `moeckpt inspect` reports about a checkpoint. Built from headers only.
public struct InspectReport: Encodable, Sendable {
    public struct Tensor: Encodable, Sendable {
        public let name: String
        /// The dataset path, for HDF5.
        public let path: String?
        public let dtype: String
        public let shape: [Int]
        public let parameters: Int
        public let bytes: Int
        /// The file holding it (a shard's or a split GGUF part's name).
        public let file: String?
    }

    /// The `--json` form's version: raised when a field changes meaning or goes away.
    public let schemaVersion = 1

    public struct DTypeTotal: Encodable, Sendable {
        public let dtype: String
        public let tensors: Int
        public let parameters: Int
        public let bytes: Int
    }

    public struct MoE: Encodable, Sendable {
        public let summary: MoESummary
        /// Experts per token used for `activeParameters`, and where that number came from.
        public let expertsPerToken: Int
        public let expertsPerTokenSource: String
        public let activeParameters: Int
        /// The router's semantics, shared expert and dense layers, from the model description.
        public var routing: MoERouting? = nil
    }

    public let path: String
    public let format: String
    public let files: [String]
    public let tensorCount: Int
    public let parameters: Int
    public let bytes: Int
    /// The tensors matching the filter, in natural name order.
    public let tensors: [Tensor]
    public let totalsByDtype: [DTypeTotal]
    public let metadata: [String: String]
    /// Other attributes (HDF5), as text.
    public let attributes: [CheckpointAttribute]
    public let model: Model?
    public let moe: MoE?
    /// `.moeckpt` checksums, when asked for (`--check`).
    public var integrity: Integrity?

    public struct Integrity: Encodable, Sendable {
        public let tensors: [TensorCheck]
        public let problems: [String]
    }

    /// The architecture and naming layout, when recognised.
    public struct Model: Encodable, Sendable {
        /// `mixtral`, or a seed module's model_type; nil when there is no description file.
        public let architecture: String?
        public let descriptionSource: String?
        /// The `--names` key of the detected layout, and its title.
        public let layout: String?
        public let layoutTitle: String?
        /// Why the checkpoint does not load as that architecture (empty when it does).
        public let problems: [String]
        /// mlx-lm's quantization of the weights, when config.json has one.
        public var quantization: Quantization? = nil
    }

    /// mlx-lm's quantization: the modules of each parameters, and the bits per weight of the
    /// whole checkpoint as mlx-lm counts them (all bytes over the weights they hold).
    public struct Quantization: Encodable, Sendable {
        public struct Group: Encodable, Sendable {
            public let mode: String
            public let bits: Int
            public let groupSize: Int
            public let modules: Int
            /// The modules' names without `model.layers.N.`, each once.
            public let roles: [String]
        }

        public let groups: [Group]
        public let bitsPerWeight: Double
    }
}

public enum Inspector {
    /// Builds the report; `filter` is a shell glob (`*experts.0.*`) that narrows the tensor table.
    public static func report(
        _ checkpoint: Checkpoint, filter: String? = nil, check: Bool = false, loader: ModelLoader = .standard
    ) -> InspectReport {
        var report = report(checkpoint, filter: filter, loader: loader)
        if check, let (tensors, problems) = checkpoint.verifyChecksums() {
            report.integrity = .init(tensors: tensors, problems: problems.map(\.description))
        }
        return report
    }

    static func report(_ checkpoint: Checkpoint, filter: String?, loader: ModelLoader) -> InspectReport {
        let described = describe(checkpoint, loader: loader)
        // One pass in name order over indices: no copy of the tensor list (a header can hold 1.4 million).
        let tensors = checkpoint.tensors
        let order = tensors.indices.sorted { naturalOrder(tensors[$0].name, tensors[$1].name) }
        var rows: [InspectReport.Tensor] = []
        // Keyed by the stored type: a GGUF block type (Q4_0, ...) is shown as stored, not as the F32
        // it reads as. Plain dtypes in descending `DType` order, then the block types by name.
        var totals: [String: (order: Int, total: InspectReport.DTypeTotal)] = [:]
        for index in order {
            let tensor = tensors[index]
            guard filter.map({ fnmatch($0, tensor.name, 0) == 0 }) ?? true else { continue }
            let (dtype, bytes) = (tensor.storedTypeName, tensor.storedByteCount)
            rows.append(
                InspectReport.Tensor(
                    name: tensor.name, path: tensor.location, dtype: dtype, shape: tensor.shape,
                    parameters: tensor.elementCount, bytes: bytes,
                    file: (tensor.storage as? FileMapping).map { FileSystem.baseName($0.path) }))
            let order = tensor.blocks == nil ? DType.allCases.firstIndex(of: tensor.dtype) ?? 0 : -1
            let total = totals[dtype]?.total ?? InspectReport.DTypeTotal(dtype: dtype, tensors: 0, parameters: 0, bytes: 0)
            totals[dtype] = (
                order,
                InspectReport.DTypeTotal(
                    dtype: dtype, tensors: total.tensors + 1, parameters: total.parameters + tensor.elementCount,
                    bytes: total.bytes + bytes)
            )
        }
        return InspectReport(
            path: checkpoint.path, format: checkpoint.format.rawValue, files: checkpoint.files,
            tensorCount: tensors.count, parameters: tensors.reduce(0) { $0 + $1.elementCount },
            bytes: tensors.reduce(0) { $0 + $1.storedByteCount }, tensors: rows,
            totalsByDtype: totals.values.sorted { ($0.order, $1.total.dtype) > ($1.order, $0.total.dtype) }.map(\.total),
            metadata: checkpoint.metadata, attributes: checkpoint.attributes, model: model(of: checkpoint, described),
            moe: moe(of: checkpoint, described), integrity: nil)
    }

    /// The architecture from the description file (nil when absent), or the reason it cannot be read.
    typealias Description = Result<ModelDescription, FileError>?

    static func describe(_ checkpoint: Checkpoint, loader: ModelLoader) -> Description {
        do {
            return try loader.describeIfDescribed(checkpoint).map { .success($0) }
        } catch {
            return .failure(error)
        }
    }

    static func model(of checkpoint: Checkpoint, _ described: Description) -> InspectReport.Model? {
        let names = checkpoint.tensors.map(\.name)
        switch described {
        case .success(let description):
            let architecture = description.architecture
            // A description beside a file of other tensors (reference outputs, say) is not its own.
            let weights = ModelLoader.weights(checkpoint, described: description).tensors.map(\.name)
            guard let layout = NamingLayout.detect(weights, among: architecture.layouts) else { return nil }
            return .init(
                architecture: architecture.modelType, descriptionSource: description.source.name,
                layout: layout.key.rawValue, layoutTitle: layout.title,
                problems: ModelLoader.problems(checkpoint, described: description, layout: layout),
                quantization: description.mlxQuantization.map { quantization(of: checkpoint, $0) })
        case .failure(let error):
            return .init(architecture: nil, descriptionSource: nil, layout: nil, layoutTitle: nil, problems: [error.description])
        case nil:
            let layout = NamingLayout.detect(names, among: ArchitectureRegistry.standard.layouts)
            guard let layout else { return nil }
            return .init(architecture: nil, descriptionSource: nil, layout: layout.key.rawValue, layoutTitle: layout.title, problems: [])
        }
    }

    static func quantization(of checkpoint: Checkpoint, _ quantization: MLXQuantization) -> InspectReport.Quantization {
        var groups: [(parameters: MLXQuantization.Parameters, modules: Int, roles: [String])] = []
        var weights = 0
        for tensor in checkpoint.tensors {
            let module = tensor.name.hasSuffix(".weight") ? String(tensor.name.dropLast(".weight".count)) : nil
            guard let module, checkpoint.tensor(named: module + ".scales") != nil,
                let parameters = quantization.parameters(forModule: module)
            else {
                // A quantized module's scales and biases count in the bytes only, as mlx-lm counts.
                let owner = tensor.name.split(separator: ".").dropLast().joined(separator: ".") + ".weight"
                let groupTable =
                    (tensor.name.hasSuffix(".scales") || tensor.name.hasSuffix(".biases")) && checkpoint.tensor(named: owner) != nil
                if !groupTable { weights += tensor.elementCount }
                continue
            }
            weights += tensor.elementCount * 32 / parameters.bits
            let role = module.replacing(/^model\.layers\.\d+\./, with: "")
            if let i = groups.firstIndex(where: { $0.parameters == parameters }) {
                groups[i].modules += 1
                if !groups[i].roles.contains(role) { groups[i].roles.append(role) }
            } else {
                groups.append((parameters, 1, [role]))
            }
        }
        let bytes = checkpoint.tensors.reduce(0) { $0 + $1.byteCount }
        return InspectReport.Quantization(
            groups: groups.sorted { $0.modules > $1.modules }.map {
                .init(
                    mode: $0.parameters.mode.rawValue, bits: $0.parameters.bits, groupSize: $0.parameters.groupSize, modules: $0.modules,
                    roles: $0.roles)
            },
            bitsPerWeight: weights > 0 ? Double(bytes * 8) / Double(weights) : 0)
    }

    /// The MoE structure, read off the names by the described architecture's tables (by the
    /// first architecture whose tables fit, without a description).
    static func moe(of checkpoint: Checkpoint, _ described: Description) -> InspectReport.MoE? {
        let tensors = checkpoint.tensors.map { ($0.name, $0.shape) }
        let candidates: [any Architecture.Type]
        if case .success(let description)? = described {
            candidates = [type(of: description.architecture)]
        } else {
            candidates = ArchitectureRegistry.standard.types
        }
        guard let summary = candidates.lazy.compactMap({ MoESummary.detect(tensors: tensors, as: $0) }).first else { return nil }
        if case .success(let description)? = described, let k = description.architecture.routedExpertsPerToken {
            return .init(
                summary: summary, expertsPerToken: k, expertsPerTokenSource: description.source.name,
                activeParameters: summary.activeParameters(expertsPerToken: k), routing: description.architecture.moeRouting)
        }
        let assumed = min(2, summary.expertsPerLayer)
        return .init(
            summary: summary, expertsPerToken: assumed, expertsPerTokenSource: "assumed (no model description)",
            activeParameters: summary.activeParameters(expertsPerToken: assumed))
    }

    /// The report as aligned text.
    public static func render(_ report: InspectReport) -> String {
        var lines: [String] = []
        render(report) { lines.append($0) }
        return lines.joined(separator: "\n")
    }

    /// The report line by line, each line escaped as a whole (whatever a file put in a name, it
    /// stays on its line). The tensor table is made a row at a time, never held whole: a header
    /// can list 1.4 million tensors.
    public static func render(_ report: InspectReport, line: (String) -> Void) {
        var lines: [String] = []
        lines.append("checkpoint  \(report.path)")
        let fileNote = report.files.count == 1 ? "" : " (\(report.files.count) files)"
        lines.append("format      \(report.format)\(fileNote)")
        lines.append(
            "tensors     \(report.tensorCount), \(grouped(report.parameters)) parameters, "
                + "\(grouped(report.bytes)) bytes (\(ByteSize.describe(report.bytes)))")
        if let model = report.model {
            var text = model.architecture.map { "\($0) (from \(model.descriptionSource ?? "?"))" } ?? "no model description"
            if let layout = model.layout, let title = model.layoutTitle { text += ", names \(layout) (\(title))" }
            lines.append("model       \(text)")
            if let quantization = model.quantization {
                let groups = quantization.groups.enumerated().map { i, group in
                    let kind = group.mode == "affine" ? "affine \(group.bits)-bit" : group.mode
                    let roles = i == 0 ? "" : ": " + group.roles.prefix(4).joined(separator: ", ") + (group.roles.count > 4 ? ", ..." : "")
                    return "\(kind), groups of \(group.groupSize) (\(group.modules) modules\(roles))"
                }
                lines.append(
                    "quantized   mlx-lm, \(String(format: "%.3f", quantization.bitsPerWeight)) bits per weight: "
                        + TerminalText.escaped(groups.joined(separator: "; ")))
            }
            if !model.problems.isEmpty {
                let shown = model.problems.prefix(8).joined(separator: "; ")
                let more = model.problems.count > 8 ? "; and \(model.problems.count - 8) more" : ""
                lines.append("            does not load: " + shown + more)
            }
        }
        lines.append("")

        let withPaths = report.tensors.contains { $0.path != nil }
        let header = [withPaths ? "PATH" : "NAME", "DTYPE", "SHAPE", "PARAMS", "BYTES"]
        func row(_ tensor: InspectReport.Tensor) -> [String] {
            var shape = "["
            for (i, dim) in tensor.shape.enumerated() { shape += (i == 0 ? "" : ", ") + String(dim) }
            return [
                TerminalText.escaped(tensor.path ?? tensor.name), TerminalText.escaped(tensor.dtype), shape + "]",
                grouped(tensor.parameters), grouped(tensor.bytes),
            ]
        }
        // Widths first, counted without making the cells.
        var widths = header.map(\.count)
        for tensor in report.tensors {
            let shapeWidth = 2 + tensor.shape.reduce(0) { $0 + decimalDigits(UInt(max($1, 0))) } + 2 * max(tensor.shape.count - 1, 0)
            let cells = [
                width(TerminalText.escaped(tensor.path ?? tensor.name)), width(TerminalText.escaped(tensor.dtype)), shapeWidth,
                groupedWidth(tensor.parameters), groupedWidth(tensor.bytes),
            ]
            for column in 0..<5 { widths[column] = max(widths[column], cells[column]) }
        }
        lines.map(TerminalText.escaped).forEach(line)
        lines = []
        line(aligned(header, widths: widths, rightAligned: [3, 4]))
        for tensor in report.tensors { line(aligned(row(tensor), widths: widths, rightAligned: [3, 4])) }
        if report.tensors.count != report.tensorCount {
            lines.append("(\(report.tensors.count) of \(report.tensorCount) tensors match the filter)")
        }

        lines.append("")
        lines.append("By dtype:")
        lines += table(
            report.totalsByDtype.map {
                ["  " + $0.dtype, "\($0.tensors) tensors", "\(grouped($0.parameters)) params", "\(grouped($0.bytes)) bytes"]
            }, rightAligned: [1, 2, 3])

        lines.append("")
        if report.metadata.isEmpty {
            lines.append("Metadata: none")
        } else {
            lines.append("Metadata:")
            for key in report.metadata.keys.sorted() {
                lines.append("  \(key.debugDescriptionUnquoted): \(report.metadata[key]!.debugDescriptionUnquoted)")
            }
        }

        if !report.attributes.isEmpty {
            lines.append("")
            lines.append("Attributes:")
            for attribute in report.attributes {
                lines.append(
                    "  \(attribute.object.debugDescriptionUnquoted) \(attribute.name.debugDescriptionUnquoted): "
                        + attribute.value.debugDescriptionUnquoted)
            }
        }

        if let integrity = report.integrity {
            lines.append("")
            let failed = integrity.tensors.filter { !$0.passed }.count
            lines.append(
                "Checksums (CRC-32C): \(integrity.tensors.count - failed) of \(integrity.tensors.count) tensors match"
                    + (integrity.problems.isEmpty ? ", padding zero" : ""))
            for problem in integrity.problems { lines.append("  CORRUPT: \(problem)") }
        }

        if let moe = report.moe {
            let s = moe.summary
            lines.append("")
            lines.append("MoE structure (\(s.layout) names):")
            lines.append(
                "  layers \(s.layers), experts per layer \(s.expertsPerLayer), "
                    + "experts per token \(moe.expertsPerToken) (\(moe.expertsPerTokenSource))")
            let projections = s.expertProjections.keys.sorted().map { "\($0) \(s.expertProjections[$0]!)" }
            lines.append("  router \(s.routerShape); expert \(projections.joined(separator: ", "))")
            if let routing = moe.routing { lines.append("  routing: \(routing.summary)") }
            lines.append(
                "  parameters: total \(grouped(s.totalParameters)), in experts \(grouped(s.expertParameters)), "
                    + "active per token \(grouped(moe.activeParameters))")
        }
        lines.map(TerminalText.escaped).forEach(line)
    }

    private static func table(_ rows: [[String]], rightAligned: Set<Int>) -> [String] {
        let rows = rows.map { $0.map(TerminalText.escaped) }
        guard let columns = rows.first?.count else { return [] }
        let widths = (0..<columns).map { column in rows.map { width($0[column]) }.max() ?? 0 }
        return rows.map { aligned($0, widths: widths, rightAligned: rightAligned) }
    }

    /// Cells padded to their columns' widths, two spaces apart, without trailing spaces (built as
    /// bytes: a table can have a million rows).
    private static func aligned(_ row: [String], widths: [Int], rightAligned: Set<Int>) -> String {
        let space = UInt8(ascii: " ")
        var line: [UInt8] = []
        line.reserveCapacity(widths.reduce(2 * widths.count, +) + 16)
        for (column, cell) in row.enumerated() {
            if column > 0 { line += [space, space] }
            let pad = max(0, widths[column] - width(cell))
            if rightAligned.contains(column) {
                line += repeatElement(space, count: pad)
                line += cell.utf8
            } else {
                line += cell.utf8
                line += repeatElement(space, count: pad)
            }
        }
        while line.last == space { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }

    /// Columns a cell takes: its characters (its bytes when ASCII, which is cheaper to count).
    private static func width(_ cell: String) -> Int {
        cell.utf8.allSatisfy { $0 < 0x80 } ? cell.utf8.count : cell.count
    }
}

extension String {
    /// Control characters shown escaped, so one metadata value stays on one line.
    var debugDescriptionUnquoted: String {
        String(String(reflecting: self).dropFirst().dropLast())
    }

    func replacingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
