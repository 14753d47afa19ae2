/// The conversion mistakes a tensor's values can name: B holds A's values, re-arranged the way a
/// known mistake re-arranges them.
enum Mistake {
    static let transposed = "transposed (B holds each matrix as [in, out])"
    static let gateUpSwapped = "gate and up projections swapped"
    static let expertsReordered = "experts in another order"
    static let rowsReordered = "rows of an expert in another order"
    static let rotaryOnce = "query/key rows in the other rotary order (permuted once more or once less than the layout needs)"
    static let rotaryTwice = "query/key rows permuted for rotary twice"
    static let matrixTransposed = "a square matrix transposed"
    static let routerRowsReordered = "router rows in another order (experts relabelled)"
    static let rowsOfMatrixReordered = "rows of a matrix in another order"

    /// The first re-arrangement of A's values that B's mismatched matrices are, if any.
    static func diagnose(
        _ a: CanonicalTensor, _ ma: Matrices, _ mb: Matrices, mismatched: [Int], tolerance: WeightTolerance, rotaryHeadDim: Int,
        byNameB: [String: CanonicalTensor]
    ) throws(FileError) -> String? {
        func same(_ x: [Float], _ y: [Float]) -> Bool { x.count == y.count && zip(x, y).allSatisfy { tolerance.holds($0, $1) } }

        // B's gate holds A's up (and the other way round).
        if let partner = swappedPartner(a.name), let tb = byNameB[partner], tb.shape == a.shape, let mp = try Matrices(tb) {
            var swapped = true
            for m in mismatched where !same(try ma.values(m), try mp.values(m)) {
                swapped = false
                break
            }
            if swapped { return gateUpSwapped }
        }
        // Each mismatched expert is another expert of B.
        if ma.count > 1 {
            var matched = true
            for m in mismatched {
                let va = try ma.values(m)
                var found = false
                for other in 0..<mb.count where other != m {
                    if same(va, try mb.values(other)) {
                        found = true
                        break
                    }
                }
                if !found {
                    matched = false
                    break
                }
            }
            if matched { return expertsReordered }
        }
        for m in mismatched {
            let (va, vb) = (try ma.values(m), try mb.values(m))
            if ma.rows == ma.columns, same(Matrices.transposed(va, rows: ma.rows, columns: ma.columns), vb) { return matrixTransposed }
            if isQueryOrKey(a.name), rotaryHeadDim > 1, rotaryHeadDim % 2 == 0, ma.rows % rotaryHeadDim == 0 {
                let (toInterleaved, toHalf) = (
                    rotary(va, columns: ma.columns, headDim: rotaryHeadDim, toInterleaved: true),
                    rotary(va, columns: ma.columns, headDim: rotaryHeadDim, toInterleaved: false)
                )
                if same(toInterleaved, vb) || same(toHalf, vb) { return rotaryOnce }
                if same(rotary(toInterleaved, columns: ma.columns, headDim: rotaryHeadDim, toInterleaved: true), vb)
                    || same(rotary(toHalf, columns: ma.columns, headDim: rotaryHeadDim, toInterleaved: false), vb)
                {
                    return rotaryTwice
                }
            }
            if rowsArePermuted(va, vb, columns: ma.columns) {
                return ma.count > 1 ? rowsReordered : a.name.hasSuffix(".moe.router") ? routerRowsReordered : rowsOfMatrixReordered
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
