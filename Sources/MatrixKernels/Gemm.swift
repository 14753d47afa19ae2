/// Y = W · X for several tokens: the matrix product behind every linear layer.
///
/// Activations are [features, tokens] matrices stored as token panels (`TokenPanels`): a panel of
/// `tokenPanel` tokens holds, for each feature, its `tokenPanel` values contiguously. Products read
/// and write that layout, so an expert's gate, up and down projections chain without copies.
///
/// Loop order: for each block of k, each block of weight rows (which then stays in L2) is swept by
/// every token panel's k-block. The register tile is `rowTile` weight rows x `tokenPanel` tokens:
/// each weight, read in place (BF16: widened a block of rows at a time), is broadcast against the
/// panel's token vectors (AVX-512: 8 x 32, 16 zmm accumulators; AVX2: 6 x 16, 12 of its 16 ymm
/// registers). Packing the weight rows first (GotoBLAS) measured no faster here, since the
/// broadcasts read 4 bytes per row per step: it is used only for the last, partial row tile.
///
/// Every output element is one chain of fused multiply-adds over k = 0, 1, 2, ... in order,
/// starting from zero, whatever the tile, edge, block, thread or build that computes it (the tests
/// hold a scalar reference of it).
enum Gemm {
    typealias Vector = SIMD16<Float>
    #if WIDE_VECTORS
    static let rowTile = 8
    static let tokenPanel = 32
    #else
    static let rowTile = 6
    static let tokenPanel = 16
    #endif
    /// k per block. A token panel's block (1024 x 16 or 32 x 4 bytes) streams from L2; longer
    /// blocks load and store the partial sums less often (measured on Zen 3, one core, 512 tokens
    /// 1024 -> 3584: kc 256 83 GFLOP/s, 1024 91.6, against a 99 GFLOP/s FMA peak).
    static let kBlock = 1024
    /// Weight rows per block, swept by every token panel before the next block; the block's k
    /// slice (at most 192 KiB on AVX2) stays in L2 (Zen 3, 512 x 1024 -> 3584: 8 tiles 179-181
    /// GFLOP/s on two threads, 40 tiles 172-176).
    static let rowBlock = 8 * rowTile

    /// - Parameters:
    ///   - weight: [*, inputs] row-major in element `E`; rows `rows` are computed.
    ///   - x: [inputs, tokens] in panels; tokens a multiple of `tokenPanel`, of which the first
    ///     `validTokens` count.
    ///   - y: [outputs, tokens] in panels; rows `rows` are written (columns past `validTokens` of
    ///     the last panel may be left as they were).
    static func multiply<E: WeightElement>(
        _ element: E.Type, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, validTokens: Int,
        y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        precondition(tokens % tokenPanel == 0 && validTokens <= tokens, "tokens must fill whole panels")
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: rowTile * kBlock)
        defer { packed.deallocate() }
        // BF16 weights are widened into an L2-sized block of fp32 rows first: a broadcast of a
        // BF16 scalar costs four instructions (512-token block 227 -> 134 ms, 32 tokens 25 -> 21).
        let widens = E.self != F32Element.self
        let widened = UnsafeMutablePointer<Float>.allocate(capacity: widens ? rowBlock * kBlock : 0)
        defer { widened.deallocate() }
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: rowTile * tokenPanel)
        defer { edge.deallocate() }
        var k0 = 0
        repeat {
            let k = k0..<min(inputs, k0 + kBlock)
            var n0 = rows.lowerBound
            while n0 < rows.upperBound {
                let n1 = min(rows.upperBound, n0 + rowBlock)
                // The last rows, when they do not fill a tile: packed once, zero-padded.
                let partial = (n1 - n0) % rowTile
                if partial > 0 { packTile(E.self, weight, ldw: inputs, rows: (n1 - partial)..<n1, k: k, into: packed) }
                if widens { widen(E.self, weight, ldw: inputs, rows: n0..<(n1 - partial), k: k, into: widened) }
                var panel = 0
                while panel < tokens / tokenPanel {
                    let valid = min(tokenPanel, validTokens - panel * tokenPanel)
                    let xPanel = x + (panel * inputs + k.lowerBound) * tokenPanel
                    var n = n0
                    while n < n1 {
                        let tileRows = min(rowTile, n1 - n)
                        let target = y + (panel * outputs + n) * tokenPanel
                        if tileRows == rowTile && widens {
                            let rows = WeightRows<F32Element>(base: widened + (n - n0) * k.count, stride: k.count * 4)
                            tile(rows, xPanel, k.count, target, first: k0 == 0, valid: valid)
                        } else if tileRows == rowTile {
                            let rowsInPlace = WeightRows<E>(
                                base: weight + E.bytes(n * inputs + k.lowerBound), stride: E.bytes(inputs))
                            tile(rowsInPlace, xPanel, k.count, target, first: k0 == 0, valid: valid)
                        } else {
                            // The same tile on the packed rows and a copy of their outputs.
                            edge.initialize(repeating: 0, count: rowTile * tokenPanel)
                            if k0 > 0 { edge.update(from: target, count: tileRows * tokenPanel) }
                            tile(PackedWeights(base: packed), xPanel, k.count, edge, first: k0 == 0, valid: valid)
                            target.update(from: edge, count: tileRows * tokenPanel)
                        }
                        n += rowTile
                    }
                    panel += 1
                }
                n0 = n1
            }
            k0 = k.upperBound
        } while k0 < inputs  // runs once when inputs == 0: the tiles store zeros
    }

    /// Rows `rows`, columns `k` of the weight widened to fp32, row after row ([rows][k]).
    static func widen<E: WeightElement>(
        _: E.Type, _ weight: UnsafeRawPointer, ldw: Int, rows: Range<Int>, k: Range<Int>,
        into out: UnsafeMutablePointer<Float>
    ) {
        for (r, n) in rows.enumerated() {
            let (row, target) = (weight + E.bytes(n * ldw + k.lowerBound), out + r * k.count)
            var i = 0
            while i + 16 <= k.count {
                UnsafeMutableRawPointer(target + i).storeBytes(of: E.vector(row, i), as: Vector.self)
                i += 16
            }
            while i < k.count {
                target[i] = E.scalar(row, i)
                i += 1
            }
        }
    }

    /// Rows `rows` (at most a tile), columns `k` of the weight, widened to fp32, as one row tile
    /// [k][rowTile]; rows past the end are zero.
    static func packTile<E: WeightElement>(
        _: E.Type, _ weight: UnsafeRawPointer, ldw: Int, rows: Range<Int>, k: Range<Int>,
        into tile: UnsafeMutablePointer<Float>
    ) {
        let count = k.count
        for r in 0..<rowTile {
            let n = rows.lowerBound + r
            guard n < rows.upperBound else {
                for i in 0..<count { tile[i * rowTile + r] = 0 }
                continue
            }
            let row = weight + E.bytes(n * ldw + k.lowerBound)
            for i in 0..<count { tile[i * rowTile + r] = E.scalar(row, i) }
        }
    }

    /// The register tile for a panel with `valid` tokens: a panel of few tokens (an expert chosen
    /// by few) is computed on its first 8 or 16 lanes only.
    @inline(__always)
    static func tile<W: TileWeights>(
        _ w: W, _ x: UnsafePointer<Float>, _ k: Int, _ y: UnsafeMutablePointer<Float>,
        first: Bool, valid: Int
    ) {
        #if WIDE_VECTORS
        if valid > 16 {
            tile(w, x, k, y, first: first)
        } else if valid > 8 {
            tile(SIMD16<Float>.self, w, x, k, y, first: first)
        } else {
            tile(SIMD8<Float>.self, w, x, k, y, first: first)
        }
        #else
        if valid > 8 {
            tile(SIMD16<Float>.self, w, x, k, y, first: first)
        } else {
            tile(SIMD8<Float>.self, w, x, k, y, first: first)
        }
        #endif
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

    @inline(__always)
    static func load<V: SIMD>(_: V.Type, _ p: UnsafePointer<Float>) -> V where V.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    @inline(__always)
    static func start<V: SIMD>(_: V.Type, _ p: UnsafeMutablePointer<Float>, _ first: Bool) -> V where V.Scalar == Float {
        first ? V() : load(V.self, p)
    }

    @inline(__always)
    static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self) }

    @inline(__always)
    static func start(_ p: UnsafeMutablePointer<Float>, _ first: Bool) -> Vector { first ? Vector() : load(p) }

    /// Row r, step i of a tile's weights, broadcast.
    @inline(__always)
    static func broadcast<W: TileWeights>(_ w: W, _ r: Int, _ i: Int) -> Vector { Vector(repeating: w.value(r, i)) }

    #if WIDE_VECTORS
    /// 8 rows x 32 tokens; `w` the tile's weights, `x` the panel [k][32], `y` [8][32].
    @inline(__always)
    static func tile<W: TileWeights>(_ w: W, _ x: UnsafePointer<Float>, _ k: Int, _ y: UnsafeMutablePointer<Float>, first: Bool) {
        var c0a = start(y, first), c0b = start(y + 16, first), c1a = start(y + 32, first), c1b = start(y + 48, first)
        var c2a = start(y + 64, first), c2b = start(y + 80, first), c3a = start(y + 96, first), c3b = start(y + 112, first)
        var c4a = start(y + 128, first), c4b = start(y + 144, first), c5a = start(y + 160, first), c5b = start(y + 176, first)
        var c6a = start(y + 192, first), c6b = start(y + 208, first), c7a = start(y + 224, first), c7b = start(y + 240, first)
        var xp = x
        for i in 0..<k {
            let xa = load(xp), xb = load(xp + 16)
            var b = broadcast(w, 0, i); c0a.addProduct(b, xa); c0b.addProduct(b, xb)
            b = broadcast(w, 1, i); c1a.addProduct(b, xa); c1b.addProduct(b, xb)
            b = broadcast(w, 2, i); c2a.addProduct(b, xa); c2b.addProduct(b, xb)
            b = broadcast(w, 3, i); c3a.addProduct(b, xa); c3b.addProduct(b, xb)
            b = broadcast(w, 4, i); c4a.addProduct(b, xa); c4b.addProduct(b, xb)
            b = broadcast(w, 5, i); c5a.addProduct(b, xa); c5b.addProduct(b, xb)
            b = broadcast(w, 6, i); c6a.addProduct(b, xa); c6b.addProduct(b, xb)
            b = broadcast(w, 7, i); c7a.addProduct(b, xa); c7b.addProduct(b, xb)
            xp += 32
        }
        store(c0a, y); store(c0b, y + 16); store(c1a, y + 32); store(c1b, y + 48)
        store(c2a, y + 64); store(c2b, y + 80); store(c3a, y + 96); store(c3b, y + 112)
        store(c4a, y + 128); store(c4b, y + 144); store(c5a, y + 160); store(c5b, y + 176)
        store(c6a, y + 192); store(c6b, y + 208); store(c7a, y + 224); store(c7b, y + 240)
    }
    #endif

    /// `rowTile` rows x one vector V of tokens (the panel's first lanes).
    @inline(__always)
    static func tile<V: SIMD, W: TileWeights>(
        _: V.Type, _ w: W, _ x: UnsafePointer<Float>, _ k: Int,
        _ y: UnsafeMutablePointer<Float>, first: Bool
    ) where V.Scalar == Float {
        let p = tokenPanel
        var c0 = start(V.self, y, first), c1 = start(V.self, y + p, first), c2 = start(V.self, y + 2 * p, first)
        var c3 = start(V.self, y + 3 * p, first), c4 = start(V.self, y + 4 * p, first), c5 = start(V.self, y + 5 * p, first)
        #if WIDE_VECTORS
        var c6 = start(V.self, y + 6 * p, first), c7 = start(V.self, y + 7 * p, first)
        #endif
        var xp = x
        for i in 0..<k {
            let xa = load(V.self, xp)
            c0.addProduct(V(repeating: w.value(0, i)), xa); c1.addProduct(V(repeating: w.value(1, i)), xa)
            c2.addProduct(V(repeating: w.value(2, i)), xa); c3.addProduct(V(repeating: w.value(3, i)), xa)
            c4.addProduct(V(repeating: w.value(4, i)), xa); c5.addProduct(V(repeating: w.value(5, i)), xa)
            #if WIDE_VECTORS
            c6.addProduct(V(repeating: w.value(6, i)), xa); c7.addProduct(V(repeating: w.value(7, i)), xa)
            #endif
            xp += p
        }
        store(c0, y); store(c1, y + p); store(c2, y + 2 * p); store(c3, y + 3 * p); store(c4, y + 4 * p); store(c5, y + 5 * p)
        #if WIDE_VECTORS
        store(c6, y + 6 * p); store(c7, y + 7 * p)
        #endif
    }
}

/// Where a register tile reads its weights: row r, step i.
protocol TileWeights {
    func value(_ r: Int, _ i: Int) -> Float
}

/// A packed tile: [k][rowTile] fp32.
struct PackedWeights: TileWeights {
    let base: UnsafePointer<Float>

    init(base: UnsafeMutablePointer<Float>) { self.base = UnsafePointer(base) }

    @inline(__always)
    func value(_ r: Int, _ i: Int) -> Float { base[i * Gemm.rowTile + r] }
}

/// The weight rows in place (in their dtype), `stride` bytes apart.
struct WeightRows<E: WeightElement>: TileWeights {
    let base: UnsafeRawPointer
    let stride: Int

    @inline(__always)
    func value(_ r: Int, _ i: Int) -> Float { E.scalar(base + r * stride, i) }
}
