import MoECkptForward

/// A conversion mistake a tensor's values name: B holds A's values re-arranged, scaled or
/// rounded the way a known mistake does it.
enum Mistake: Equatable {
    case transposed
    case gateUpSwapped
    case gateUpRowsMixed
    case expertsReordered
    case anotherTensor(String, holding: String)
    case rowsReordered
    case routerRowsReordered
    case matrixRowsReordered
    case matrixTransposed
    case rotaryOnce
    case rotaryTwice
    case rotaryWithOtherHeads(heads: Int, modelHeads: Int)
    case zeros
    case nonFinite
    case rounded(DType)
    case signFlipped
    case scaled(Double)
    case shifted(Double)
    case routerQuantized(String)

    var description: String {
        switch self {
        case .transposed: "transposed (B holds each matrix as [in, out])"
        case .gateUpSwapped: "gate and up projections swapped"
        case .gateUpRowsMixed:
            "gate and up rows mixed (a fused gate_up_proj split in halves where its rows alternate, or the other way round)"
        case .expertsReordered: "experts in another order"
        case .anotherTensor(let name, let other):
            "another tensor's values: B's \(name) holds A's \(other) (tensors exchanged, or mapped to the wrong name)"
        case .rowsReordered: "rows of an expert in another order"
        case .routerRowsReordered: "router rows in another order (experts relabelled)"
        case .matrixRowsReordered: "rows of a matrix in another order"
        case .matrixTransposed: "a square matrix transposed"
        case .rotaryOnce: "query/key rows in the other rotary order (permuted once more or once less than the layout needs)"
        case .rotaryTwice: "query/key rows permuted for rotary twice"
        case .rotaryWithOtherHeads(let heads, let modelHeads):
            "query/key rows permuted for rotary as \(heads) heads where this matrix has \(modelHeads) (the wrong head count)"
        case .zeros: "all zeros (values not copied)"
        case .nonFinite: "infinite or NaN values where A's are finite (overflow in a cast to a narrower dtype)"
        case .rounded(let dtype): "values rounded to \(dtype.name) (precision lost in a cast)"
        case .signFlipped: "sign flipped"
        case .scaled(let factor): "scaled by \(Verifier.scientific(factor)) (a multiplier folded into the weights, or folded twice)"
        case .shifted(let offset):
            abs(abs(offset) - 1) < 1e-6
                ? "shifted by \(offset < 0 ? "-1" : "+1") (a norm weight stored as 1 + w where w is meant, or the other way round)"
                : "shifted by \(Verifier.scientific(offset))"
        case .routerQuantized(let format):
            "router quantized (\(format)): llama.cpp's converter and llama-quantize keep ffn_gate_inp in F32"
        }
    }

    /// What the search for a mistake reads of the two models.
    struct Context {
        let tensorsA: [String: CanonicalTensor]
        let tensorsB: [String: CanonicalTensor]
        let indexA: ValueIndex
        let rotaryHeadDim: Int
    }

    /// The first mistake B's mismatched matrices (`mismatched`, in order) show, if any: whole
    /// tensors first (a swap, another tensor's values), then the first mismatched matrix alone.
    static func diagnose(
        _ a: CanonicalTensor, _ ma: Matrices, _ mb: Matrices, mismatched: [Int], tolerance: WeightTolerance, context: Context
    ) throws(FileError) -> Mistake? {
        func same(_ x: [Float], _ y: [Float]) -> Bool { x.count == y.count && zip(x, y).allSatisfy { tolerance.holds($0, $1) } }
        func allMismatched(_ match: (Int) throws(FileError) -> Bool) throws(FileError) -> Bool {
            for m in mismatched where try !match(m) { return false }
            return true
        }

        if let partner = swappedPartner(a.name), let pa = context.tensorsA[partner], let pb = context.tensorsB[partner],
            pa.shape == a.shape, pb.shape == a.shape, let mpa = try Matrices(pa), let mpb = try Matrices(pb)
        {
            // B's gate holds A's up (and the other way round).
            if try allMismatched({ m throws(FileError) in same(try ma.values(m), try mpb.values(m)) }) { return .gateUpSwapped }
            // B's gate and up rows are A's, shuffled between the two (not each within itself).
            if try allMismatched({ m throws(FileError) in
                let (va, vb) = (try ma.values(m), try mb.values(m))
                let (vpa, vpb) = (try mpa.values(m), try mpb.values(m))
                return !rowsArePermuted(va, vb, columns: ma.columns) && rowsArePermuted(va + vpa, vb + vpb, columns: ma.columns)
            }) {
                return .gateUpRowsMixed
            }
        }
        // Each mismatched expert is another expert of B.
        if ma.count > 1,
            try allMismatched({ m throws(FileError) in
                let va = try ma.values(m)
                for other in 0..<mb.count where other != m {
                    if same(va, try mb.values(other)) { return true }
                }
                return false
            })
        {
            return .expertsReordered
        }
        if let other = try context.indexA.tensor(holding: mb, besides: a.name, tolerance: tolerance) {
            return .anotherTensor(a.name, holding: other)
        }

        guard let m = mismatched.first else { return nil }
        let (va, vb) = (try ma.values(m), try mb.values(m))
        if let found = valueMistake(va, vb, dtype: a.dtype, tolerance: tolerance) { return found }
        if ma.rows == ma.columns, same(Matrices.transposed(va, rows: ma.rows, columns: ma.columns), vb) { return .matrixTransposed }
        if isQueryOrKey(a.name),
            let found = rotaryMistake(va, vb, rows: ma.rows, columns: ma.columns, headDim: context.rotaryHeadDim, same: same)
        {
            return found
        }
        if rowsArePermuted(va, vb, columns: ma.columns) {
            return ma.count > 1 ? .rowsReordered : a.name.hasSuffix(".moe.router") ? .routerRowsReordered : .matrixRowsReordered
        }
        return nil
    }

    /// B's values as a function of A's, element by element: overflow, rounding, an offset, zeros
    /// or a factor.
    static func valueMistake(_ va: [Float], _ vb: [Float], dtype: DType, tolerance: WeightTolerance) -> Mistake? {
        guard va.contains(where: { $0 != 0 }) else { return nil }
        if zip(va, vb).contains(where: { $0.isFinite && !$1.isFinite }) { return .nonFinite }
        for narrower in [DType.bf16, .f16] where (dtype.byteWidth ?? 0) > (narrower.byteWidth ?? 0) {
            if zip(va, vb).allSatisfy({ $1.bitPattern == $0.rounded(to: narrower).bitPattern }) { return .rounded(narrower) }
        }
        // Within a float rounding of b, so that a factor applied in float32 is found.
        func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= tolerance.atol + max(tolerance.rtol, 0x1p-20) * max(abs(x), abs(y)) }
        var (dot, squared, offset) = (0.0, 0.0, 0.0)
        for (x, y) in zip(va, vb) {
            (dot, squared, offset) = (dot + Double(x) * Double(y), squared + Double(x) * Double(x), offset + Double(y) - Double(x))
        }
        // An offset first: a norm of ones stored as w - 1 is zeros, and a shift, not a loss.
        offset /= Double(va.count)
        if abs(offset) > 1e-6, zip(va, vb).allSatisfy({ close(Double($0) + offset, Double($1)) }) { return .shifted(offset) }
        if vb.allSatisfy({ $0 == 0 }) { return .zeros }
        let factor = dot / squared
        if abs(factor - 1) > 1e-6, zip(va, vb).allSatisfy({ close(factor * Double($0), Double($1)) }) {
            return abs(factor + 1) < 1e-6 ? .signFlipped : .scaled(factor)
        }
        return nil
    }

    /// Rows of query or key heads re-ordered for rotary: once or twice in heads of the model's
    /// size, or once in heads of another size (a key matrix permuted with the query's head count).
    static func rotaryMistake(
        _ va: [Float], _ vb: [Float], rows: Int, columns: Int, headDim: Int, same: ([Float], [Float]) -> Bool
    ) -> Mistake? {
        func permuted(_ values: [Float], _ size: Int, toInterleaved: Bool) -> [Float] {
            rotary(values, columns: columns, headDim: size, toInterleaved: toInterleaved)
        }
        if headDim > 1, headDim % 2 == 0, rows % headDim == 0 {
            let (toInterleaved, toHalf) = (permuted(va, headDim, toInterleaved: true), permuted(va, headDim, toInterleaved: false))
            if same(toInterleaved, vb) || same(toHalf, vb) { return .rotaryOnce }
            if same(permuted(toInterleaved, headDim, toInterleaved: true), vb) || same(permuted(toHalf, headDim, toInterleaved: false), vb)
            {
                return .rotaryTwice
            }
        }
        for size in stride(from: 2, through: rows, by: 2) where size != headDim && rows % size == 0 {
            if same(permuted(va, size, toInterleaved: true), vb) || same(permuted(va, size, toInterleaved: false), vb) {
                return .rotaryWithOtherHeads(heads: rows / size, modelHeads: headDim > 0 ? rows / headDim : 0)
            }
        }
        return nil
    }

    /// The name of the projection a gate/up swap would put in `name`'s place.
    static func swappedPartner(_ name: String) -> String? {
        for (from, to) in [(".gate", ".up"), (".up", ".gate")] where name.hasSuffix(from) {
            let stem = name.dropLast(from.count)
            if stem.hasSuffix(".moe") || stem.hasSuffix(".mlp") || stem.hasSuffix(".moe.shared") { return stem + to }
        }
        return nil
    }

    static func isQueryOrKey(_ name: String) -> Bool { name.hasSuffix(".attn.q") || name.hasSuffix(".attn.k") }

    /// Rows re-ordered within each head of `headDim` rows: from half-split rotary order (transformers')
    /// to interleaved pairs (Meta's, GGUF's), or back.
    static func rotary(_ values: [Float], columns: Int, headDim: Int, toInterleaved: Bool) -> [Float] {
        var out = values
        let half = headDim / 2
        for head in stride(from: 0, to: values.count / columns, by: headDim) {
            for i in 0..<half {
                for (halfRow, pairRow) in [(i, 2 * i), (half + i, 2 * i + 1)] {
                    let (from, to) = toInterleaved ? (head + halfRow, head + pairRow) : (head + pairRow, head + halfRow)
                    for c in 0..<columns { out[to * columns + c] = values[from * columns + c] }
                }
            }
        }
        return out
    }

    /// Whether B's rows are A's, bit for bit, in another order.
    static func rowsArePermuted(_ a: [Float], _ b: [Float], columns: Int) -> Bool {
        guard columns > 0, a.count == b.count else { return false }
        func rows(_ values: [Float]) -> [[UInt32]] {
            stride(from: 0, to: values.count, by: columns).map { values[$0..<($0 + columns)].map(\.bitPattern) }
        }
        var counts: [[UInt32]: Int] = [:]
        for row in rows(a) { counts[row, default: 0] += 1 }
        for row in rows(b) {
            guard let count = counts[row], count > 0 else { return false }
            counts[row] = count - 1
        }
        return true
    }
}

/// A's tensors by shape and first values, built on the first question: which of A's tensors
/// (other than the one B's stands for) does B's tensor hold?
final class ValueIndex {
    private let tensors: [CanonicalTensor]
    private var index: [Key: [CanonicalTensor]]?

    struct Key: Hashable {
        let shape: [Int]
        let first: [UInt32]
    }

    /// Values read per tensor for its key: enough to tell tensors apart, few enough to read all.
    static let prefixCount = 64

    init(_ tensors: [CanonicalTensor]) { self.tensors = tensors }

    func tensor(holding mb: Matrices, besides name: String, tolerance: WeightTolerance) throws(FileError) -> String? {
        if index == nil {
            var built: [Key: [CanonicalTensor]] = [:]
            for tensor in tensors {
                if let matrices = try Matrices(tensor) { built[try Self.key(matrices), default: []].append(tensor) }
            }
            index = built
        }
        for candidate in index?[try Self.key(mb)] ?? [] where candidate.name != name {
            guard let mc = try Matrices(candidate) else { continue }
            var equal = true
            for m in 0..<mc.count where equal {
                equal = zip(try mc.values(m), try mb.values(m)).allSatisfy { tolerance.holds($0, $1) }
            }
            if equal { return candidate.name }
        }
        return nil
    }

    private static func key(_ matrices: Matrices) throws(FileError) -> Key {
        Key(shape: matrices.tensor.shape, first: try matrices.prefix(prefixCount).map(\.bitPattern))
    }
}

extension Float {
    /// The value a cast to `dtype` (BF16 or F16) and back gives, rounded as torch rounds.
    func rounded(to dtype: DType) -> Float {
        switch dtype {
        case .bf16: Float(bitPattern: FloatBits.bf16ToF32(FloatBits.f32ToBF16(bitPattern)))
        case .f16: Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16(bitPattern)))
        default: self
        }
    }
}
