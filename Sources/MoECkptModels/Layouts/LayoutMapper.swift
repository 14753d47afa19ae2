import MoECkptFormats
import MoECkptTensors

/// A tensor under some layout's names: its bytes are a rope over the checkpoint's storage.
public struct NamedTensor: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let rope: ByteRope

    public init(name: String, dtype: DType, shape: [Int], rope: ByteRope) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.rope = rope
    }
}

/// A tensor under the canonical names.
public typealias CanonicalTensor = NamedTensor

/// Moves tensors between a layout's names and the canonical names, by the layout's table.
/// Every re-arrangement (stacking, splitting fused experts, rotary row order) is a rearrangement of
/// byte ranges, so loading copies nothing.
public enum LayoutMapper {
    /// Loads the canonical tensors from stored ones, reporting every problem at once: missing and
    /// unexpected tensors, wrong shapes, mixed dtypes.
    ///
    /// `lenient` (for compare, which names what a wrong conversion did): missing and unexpected
    /// tensors are not problems but `deviations`; a tensor stored transposed is transposed back
    /// and its canonical tensors listed; one of another shape taken whole is kept as it is.
    public static func load(
        _ stored: [NamedTensor], architecture: any Architecture, layout: NamingLayout, lenient: Bool = false
    )
        -> (tensors: [CanonicalTensor], problems: [String], deviations: Deviations)
    {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var used = Set<String>()
        var problems: [String] = []
        var deviations: Deviations? = lenient ? Deviations() : nil
        var result: [String: CanonicalTensor] = [:]
        let requirements = architecture.canonicalTensors
        resolve(requirements, byName, architecture, layout, into: &result, used: &used, problems: &problems, deviations: &deviations)
        var loaded = requirements
        for group in architecture.optionalTensorGroups {
            var groupProblems: [String] = []
            var groupDeviations: Deviations? = lenient ? Deviations() : nil
            let found = resolve(
                group.tensors, byName, architecture, layout, into: &result, used: &used, problems: &groupProblems,
                deviations: &groupDeviations)
            guard found > 0 else { continue }
            problems += groupProblems.map { "\(group.title): \($0)" }
            deviations?.merge(groupDeviations)
            loaded += group.tensors
        }
        for tensor in stored where !used.contains(tensor.name) {
            if layout.ignored.contains(where: { $0.match(tensor.name) != nil }) { continue }
            if deviations != nil { deviations?.unexpected.append(tensor) } else { problems.append("unexpected tensor \(tensor.name)") }
        }
        return (loaded.compactMap { result[$0.name] }, problems, deviations ?? Deviations())
    }

    /// What a lenient load let through.
    public struct Deviations: Sendable {
        /// Stored tensors not found.
        public var missing: [String] = []
        /// Stored tensors no entry of the layout takes.
        public var unexpected: [NamedTensor] = []
        /// Canonical tensors stored transposed (last two dimensions exchanged), transposed back.
        public var transposed: Set<String> = []
        /// Tensors of another shape, kept under their own.
        public var misshapen: [String] = []

        public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && transposed.isEmpty && misshapen.isEmpty }

        mutating func merge(_ other: Deviations?) {
            guard let other else { return }
            missing += other.missing
            unexpected += other.unexpected
            transposed.formUnion(other.transposed)
            misshapen += other.misshapen
        }
    }

    /// Finds the stored tensors of `requirements` by the layout's table, adding them to `result`
    /// (re-arranged) and their problems to `problems` (or, when lenient, to `deviations`);
    /// returns how many stored tensors it found.
    @discardableResult
    private static func resolve(
        _ requirements: [TensorRequirement], _ byName: [String: NamedTensor], _ architecture: any Architecture,
        _ layout: NamingLayout, into result: inout [String: CanonicalTensor], used: inout Set<String>,
        problems: inout [String], deviations: inout Deviations?
    ) -> Int {
        let required = Dictionary(requirements.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        var found = 0
        var fetchedTransposed = false

        /// `keepable`: taken whole, so a tensor of another shape may be kept (when lenient) as it is.
        func fetch(_ name: String, shape expected: [Int], keepable: Bool = false) -> NamedTensor? {
            guard let tensor = byName[name] else {
                if deviations != nil { deviations?.missing.append(name) } else { problems.append("missing tensor \(name)") }
                return nil
            }
            used.insert(name)
            found += 1
            guard tensor.shape == expected else {
                let problem = "\(name) has shape \(tensor.shape), expected \(expected)"
                guard deviations != nil, tensor.shape.count == expected.count else {
                    problems.append(problem)
                    return nil
                }
                if let back = ColumnDeal(partShape: expected, parts: 1, transposed: true), back.storedShape == tensor.shape,
                    let rope = back.part(0, of: tensor.rope, dtype: tensor.dtype, name: name)
                {
                    fetchedTransposed = true
                    return NamedTensor(name: name, dtype: tensor.dtype, shape: expected, rope: rope)
                }
                guard keepable else {
                    problems.append(problem)
                    return nil
                }
                deviations?.misshapen.append(problem)
                return tensor
            }
            return tensor
        }

        for entry in layout.entries {
            for requirement in requirements {
                guard let match = entry.canonical[0].match(requirement.name) else { continue }
                let block = match.block
                let canonicalNames = entry.canonical.map { $0.name(block: block) }
                let shapes = canonicalNames.compactMap { required[$0] }
                guard shapes.count == canonicalNames.count else { continue }
                fetchedTransposed = false
                defer { if fetchedTransposed { deviations?.transposed.formUnion(canonicalNames) } }
                switch entry.transform {
                case .identity:
                    if let t = fetch(entry.stored.name(block: block), shape: shapes[0], keepable: true) {
                        result[canonicalNames[0]] = CanonicalTensor(name: canonicalNames[0], dtype: t.dtype, shape: t.shape, rope: t.rope)
                    }
                case .rotaryInterleaved:
                    if let t = fetch(entry.stored.name(block: block), shape: shapes[0]) {
                        guard let rows = RowLayout(t.dtype, shapes[0]), architecture.rotaryHeadDim > 0 else {
                            problems.append("\(t.name): cannot reorder rows of a \(t.dtype.name) tensor"); continue
                        }
                        result[canonicalNames[0]] = CanonicalTensor(
                            name: canonicalNames[0], dtype: t.dtype, shape: t.shape,
                            rope: rows.permuted(t.rope, headDim: architecture.rotaryHeadDim, fromInterleaved: true))
                    }
                case .perExpert:
                    let count = shapes[0][0]
                    let parts = (0..<count).compactMap {
                        fetch(entry.stored.name(block: block, expert: $0), shape: Array(shapes[0].dropFirst()), keepable: true)
                    }
                    guard parts.count == count, let dtype = sameDtype(parts, &problems) else { continue }
                    guard Set(parts.map(\.shape)).count == 1 else {
                        problems.append("\(canonicalNames[0]): its experts have different shapes")
                        continue
                    }
                    var rope = ByteRope()
                    for part in parts { rope.append(part.rope) }
                    result[canonicalNames[0]] = CanonicalTensor(
                        name: canonicalNames[0], dtype: dtype, shape: [count] + parts[0].shape, rope: rope)
                case .fusedRows:
                    let rowsEach = shapes.map { $0[0] }
                    let fusedShape = [rowsEach.reduce(0, +)] + Array(shapes[0].dropFirst())
                    guard let t = fetch(entry.stored.name(block: block), shape: fusedShape) else { continue }
                    guard let rows = RowLayout(t.dtype, [1] + fusedShape) else {
                        problems.append("\(t.name): cannot split a \(t.dtype.name) tensor")
                        continue
                    }
                    let split = rows.splitFused(t.rope, experts: 1, rows: rowsEach)
                    for (i, name) in canonicalNames.enumerated() {
                        result[name] = CanonicalTensor(name: name, dtype: t.dtype, shape: shapes[i], rope: split[i])
                    }
                case .fusedPerExpert, .fusedPerHead:
                    guard shapes.allSatisfy({ $0.count >= 2 }) else { continue }
                    let rowsEach = shapes.map { $0[1] }
                    var fusedShape = shapes[0]
                    fusedShape[1] = rowsEach.reduce(0, +)
                    let storedShape =
                        entry.transform == .fusedPerHead ? [fusedShape[0] * fusedShape[1]] + fusedShape.dropFirst(2) : fusedShape
                    guard let t = fetch(entry.stored.name(block: block), shape: storedShape) else { continue }
                    guard let rows = RowLayout(t.dtype, fusedShape) else {
                        problems.append("\(t.name): cannot split a \(t.dtype.name) tensor"); continue
                    }
                    let split = rows.splitFused(t.rope, experts: fusedShape[0], rows: rowsEach)
                    for (i, name) in canonicalNames.enumerated() {
                        result[name] = CanonicalTensor(name: name, dtype: t.dtype, shape: shapes[i], rope: split[i])
                    }
                case .dealtColumns(let transposed):
                    guard Set(shapes).count == 1, let deal = ColumnDeal(partShape: shapes[0], parts: shapes.count, transposed: transposed)
                    else { continue }
                    guard let t = fetch(entry.stored.name(block: block), shape: deal.storedShape) else { continue }
                    for (i, name) in canonicalNames.enumerated() {
                        guard let rope = deal.part(i, of: t.rope, dtype: t.dtype, name: t.name) else {
                            problems.append("\(t.name): cannot re-arrange a \(t.dtype.name) tensor"); break
                        }
                        result[name] = CanonicalTensor(name: name, dtype: t.dtype, shape: shapes[i], rope: rope)
                    }
                }
            }
        }
        return found
    }

    /// The canonical tensors under a layout's names, in table order.
    public static func export(
        _ canonical: [CanonicalTensor], architecture: any Architecture, layout: NamingLayout
    )
        throws(ModelLoadError) -> [NamedTensor]
    {
        let byName = Dictionary(uniqueKeysWithValues: canonical.map { ($0.name, $0) })
        var out: [NamedTensor] = []
        for entry in layout.entries {
            for tensor in canonical {
                guard let match = entry.canonical[0].match(tensor.name) else { continue }
                let block = match.block
                let parts = entry.canonical.compactMap { byName[$0.name(block: block)] }
                guard parts.count == entry.canonical.count else { continue }
                let storedName = entry.stored.name(block: block)
                switch entry.transform {
                case .identity:
                    out.append(NamedTensor(name: storedName, dtype: tensor.dtype, shape: tensor.shape, rope: tensor.rope))
                case .rotaryInterleaved:
                    guard let rows = RowLayout(tensor.dtype, tensor.shape) else { throw .cannotRearrange(tensor.name, tensor.dtype) }
                    out.append(
                        NamedTensor(
                            name: storedName, dtype: tensor.dtype, shape: tensor.shape,
                            rope: rows.permuted(tensor.rope, headDim: architecture.rotaryHeadDim, fromInterleaved: false)))
                case .perExpert:
                    guard let rows = RowLayout(tensor.dtype, tensor.shape) else { throw .cannotRearrange(tensor.name, tensor.dtype) }
                    let expertBytes = rows.rowBytes
                    for e in 0..<tensor.shape[0] {
                        out.append(
                            NamedTensor(
                                name: entry.stored.name(block: block, expert: e), dtype: tensor.dtype,
                                shape: Array(tensor.shape.dropFirst()),
                                rope: tensor.rope.slice(e * expertBytes, expertBytes)))
                    }
                case .fusedRows:
                    guard parts.allSatisfy({ $0.dtype == tensor.dtype }), tensor.dtype.byteWidth != nil else {
                        throw .cannotRearrange(tensor.name, tensor.dtype)
                    }
                    var rope = ByteRope()
                    for part in parts { rope.append(part.rope) }
                    let shape = [parts.reduce(0) { $0 + $1.shape[0] }] + Array(tensor.shape.dropFirst())
                    out.append(NamedTensor(name: storedName, dtype: tensor.dtype, shape: shape, rope: rope))
                case .fusedPerExpert, .fusedPerHead:
                    guard parts.allSatisfy({ $0.dtype == tensor.dtype }), tensor.dtype.byteWidth != nil else {
                        throw .cannotRearrange(tensor.name, tensor.dtype)
                    }
                    var rope = ByteRope()
                    for e in 0..<tensor.shape[0] {
                        for part in parts {
                            let bytes = part.rope.count / max(part.shape[0], 1)
                            rope.append(part.rope.slice(e * bytes, bytes))
                        }
                    }
                    var shape = tensor.shape
                    shape[1] = parts.reduce(0) { $0 + $1.shape[1] }
                    if entry.transform == .fusedPerHead { shape = [shape[0] * shape[1]] + shape.dropFirst(2) }
                    out.append(NamedTensor(name: storedName, dtype: tensor.dtype, shape: shape, rope: rope))
                case .dealtColumns(let transposed):
                    guard parts.allSatisfy({ $0.dtype == tensor.dtype && $0.shape == tensor.shape }),
                        let deal = ColumnDeal(partShape: tensor.shape, parts: parts.count, transposed: transposed),
                        let rope = deal.joined(parts.map(\.rope), dtype: tensor.dtype, name: storedName)
                    else { throw .cannotRearrange(tensor.name, tensor.dtype) }
                    out.append(NamedTensor(name: storedName, dtype: tensor.dtype, shape: deal.storedShape, rope: rope))
                }
            }
        }
        return out
    }

    /// The optional groups a loaded model carries that a layout has no names for (mlx-lm's and
    /// llama.cpp's DeepSeek-V3 have none for its multi-token-prediction layers), and the
    /// canonical tensors without them.
    public static func withoutUnnamedGroups(
        _ canonical: [CanonicalTensor], architecture: any Architecture, layout: NamingLayout
    ) -> (tensors: [CanonicalTensor], dropped: [OptionalTensorGroup]) {
        let present = Set(canonical.map(\.name))
        var dropped: [OptionalTensorGroup] = []
        var droppedNames = Set<String>()
        for group in architecture.optionalTensorGroups where group.tensors.contains(where: { present.contains($0.name) }) {
            let named = group.tensors.allSatisfy { tensor in
                layout.entries.contains { entry in entry.canonical.contains { $0.match(tensor.name) != nil } }
            }
            if !named {
                dropped.append(group)
                droppedNames.formUnion(group.tensors.map(\.name))
            }
        }
        return (canonical.filter { !droppedNames.contains($0.name) }, dropped)
    }

    private static func sameDtype(_ parts: [NamedTensor], _ problems: inout [String]) -> DType? {
        guard let first = parts.first else { return nil }
        if let other = parts.first(where: { $0.dtype != first.dtype }) {
            problems.append("\(other.name) is \(other.dtype.name) but \(first.name) is \(first.dtype.name)")
            return nil
        }
        return first.dtype
    }
}

/// Byte geometry of a tensor's outermost dimension, for slicing it into rows.
struct RowLayout {
    /// Bytes of one index of the first dimension.
    let rowBytes: Int
    /// Bytes of one index of the second dimension.
    let innerRowBytes: Int

    /// Rows of a matrix of `rowBytes` bytes each (a row of ggml blocks).
    init(rowBytes: Int) {
        self.rowBytes = rowBytes
        innerRowBytes = rowBytes
    }

    /// Nil for tensors whose rows are not whole bytes (packed sub-byte types).
    init?(_ dtype: DType, _ shape: [Int]) {
        guard let width = dtype.byteWidth, !shape.isEmpty else { return nil }
        rowBytes = shape.dropFirst().reduce(width, *)
        innerRowBytes = shape.count >= 2 ? shape.dropFirst(2).reduce(width, *) : width
    }

    /// Query/key rows between rotate-half order (transformers) and interleaved order (Mistral,
    /// llama.cpp). Within a head of `headDim` rows, rotate-half row `j * d/2 + i` is interleaved
    /// row `2i + j`.
    func permuted(_ rope: ByteRope, headDim: Int, fromInterleaved: Bool) -> ByteRope {
        let rows = rope.count / max(rowBytes, 1)
        let half = headDim / 2
        var out = ByteRope()
        for head in 0..<(rows / headDim) {
            for r in 0..<headDim {
                let source = fromInterleaved ? 2 * (r % half) + r / half : (r % 2) * half + r / 2
                out.append(rope.slice((head * headDim + source) * rowBytes, rowBytes))
            }
        }
        return out
    }

    /// Splits [experts, rows[0] + rows[1] + ..., ...] into one rope per part, experts stacked.
    func splitFused(_ rope: ByteRope, experts: Int, rows: [Int]) -> [ByteRope] {
        var parts = Array(repeating: ByteRope(), count: rows.count)
        for e in 0..<experts {
            var offset = e * rowBytes
            for (i, count) in rows.enumerated() {
                parts[i].append(rope.slice(offset, count * innerRowBytes))
                offset += count * innerRowBytes
            }
        }
        return parts
    }
}

/// Why a model cannot be loaded or written in a layout.
public enum ModelLoadError: Error, CustomStringConvertible, Equatable, Sendable {
    case problems([String])
    /// Problems whose common cause is recognised (the weights are in a form the description
    /// does not say): the cause first.
    case causedBy(String, problems: [String])
    case layoutNotForArchitecture(layout: LayoutKey, modelType: String)
    case cannotRearrange(String, DType)
    case layoutCannotExpress(layout: LayoutKey, modelType: String, lost: [String])

    public var description: String {
        switch self {
        case .problems(let list):
            "does not match its model description: " + Self.firstFew(list)
        case .causedBy(let cause, let list):
            "does not match its model description: \(cause) (" + Self.firstFew(list) + ")"
        case .layoutNotForArchitecture(let layout, let modelType):
            "names \"\(layout)\" do not apply to a \(modelType) model"
        case .layoutCannotExpress(let layout, let modelType, let lost):
            "names \"\(layout)\" cannot express this \(modelType) model: " + lost.joined(separator: "; ")
        case .cannotRearrange(let name, let dtype):
            "\(name): cannot re-arrange rows of a \(dtype.name) tensor"
        }
    }

    /// A checkpoint of another format or model can differ in every tensor: the first few say enough.
    static func firstFew(_ list: [String]) -> String {
        list.prefix(5).joined(separator: "; ") + (list.count > 5 ? "; and \(list.count - 5) more" : "")
    }
}
