/// y = x · wᵀ (+ bias): the linear layer of PyTorch, with weights stored [out, in] as they are in
/// every checkpoint.
///
/// A 4 x 4 register tile of dot products: four rows of x against four rows of w, sixteen SIMD16
/// accumulators, one horizontal sum each at the end. Every element, whether it falls in a full
/// tile or an edge, is the same sequence of fused multiply-adds over 16-lane chunks of k, then the
/// lane sum, then the remaining k in order, so results do not depend on tiling or threads.
public enum Linear {
    public typealias Vector = SIMD16<Float>
    static let lanes = Vector.scalarCount
    /// Bytes of token rows processed per block: they stay in L2 (1 MiB) while every weight row
    /// streams past, so weights are read from memory once per block.
    static let tokenBlockBytes = 512 << 10

    static func tokenBlock(inputs: Int) -> Int { max(4, tokenBlockBytes / max(4 * inputs, 1) / 4 * 4) }

    /// - Parameters: x [rows, inputs], weight [outputs, inputs], bias [outputs] or nil, y [rows, outputs].
    public static func forward(x: UnsafePointer<Float>, rows: Int, inputs: Int,
                               weight: UnsafePointer<Float>, outputs: Int, bias: UnsafePointer<Float>?,
                               into y: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let (xs, ws, ys) = (SendableConstPointer(x), SendableConstPointer(weight), SendablePointer(y))
        let bs = bias.map(SendableConstPointer.init)
        let tokenBlock = Self.tokenBlock(inputs: inputs)
        Parallel.ranges(outputs, threads: threads, alignment: 4) { outputRange in
            var t0 = 0
            while t0 < rows {
                let t1 = min(rows, t0 + tokenBlock)
                block(xs.base, rows: t0..<t1, inputs: inputs, weight: ws.base, outputs: outputRange,
                      bias: bs?.base, y: ys.base, ldy: outputs)
                t0 = t1
            }
        }
    }

    @inline(__always)
    static func block(_ x: UnsafePointer<Float>, rows: Range<Int>, inputs k: Int, weight: UnsafePointer<Float>,
                      outputs: Range<Int>, bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, ldy: Int) {
        var n = outputs.lowerBound
        while n < outputs.upperBound {
            let nCount = min(4, outputs.upperBound - n)
            var t = rows.lowerBound
            while t < rows.upperBound {
                let tCount = min(4, rows.upperBound - t)
                if nCount == 4 && tCount == 4 {
                    tile4x4(x + t * k, weight + n * k, k, y + t * ldy + n, ldy, bias.map { $0 + n })
                } else {
                    for tt in 0..<tCount {
                        for nn in 0..<nCount {
                            let value = dot(x + (t + tt) * k, weight + (n + nn) * k, k)
                            y[(t + tt) * ldy + n + nn] = bias.map { value + $0[n + nn] } ?? value
                        }
                    }
                }
                t += tCount
            }
            n += nCount
        }
    }

    /// One element: the reference sequence every tile reproduces.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = Vector()
        var i = 0
        while i + lanes <= k {
            acc.addProduct(load(a + i), load(b + i))
            i += lanes
        }
        return finish(acc, a, b, from: i, k)
    }

    /// The lane sum, then the k that do not fill a vector, in order.
    @inline(__always)
    static func finish(_ acc: Vector, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, from start: Int, _ k: Int) -> Float {
        var sum = acc.sum()
        var i = start
        while i < k {
            sum = sum.addingProduct(a[i], b[i])
            i += 1
        }
        return sum
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(p).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func tile4x4(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ k: Int,
                        _ y: UnsafeMutablePointer<Float>, _ ldy: Int, _ bias: UnsafePointer<Float>?) {
        var a00 = Vector(), a01 = Vector(), a02 = Vector(), a03 = Vector()
        var a10 = Vector(), a11 = Vector(), a12 = Vector(), a13 = Vector()
        var a20 = Vector(), a21 = Vector(), a22 = Vector(), a23 = Vector()
        var a30 = Vector(), a31 = Vector(), a32 = Vector(), a33 = Vector()
        let (x0, x1, x2, x3) = (x, x + k, x + 2 * k, x + 3 * k)
        let (w0, w1, w2, w3) = (w, w + k, w + 2 * k, w + 3 * k)
        var i = 0
        while i + lanes <= k {
            let (p0, p1, p2, p3) = (load(x0 + i), load(x1 + i), load(x2 + i), load(x3 + i))
            let (q0, q1, q2, q3) = (load(w0 + i), load(w1 + i), load(w2 + i), load(w3 + i))
            a00.addProduct(p0, q0); a01.addProduct(p0, q1); a02.addProduct(p0, q2); a03.addProduct(p0, q3)
            a10.addProduct(p1, q0); a11.addProduct(p1, q1); a12.addProduct(p1, q2); a13.addProduct(p1, q3)
            a20.addProduct(p2, q0); a21.addProduct(p2, q1); a22.addProduct(p2, q2); a23.addProduct(p2, q3)
            a30.addProduct(p3, q0); a31.addProduct(p3, q1); a32.addProduct(p3, q2); a33.addProduct(p3, q3)
            i += lanes
        }
        @inline(__always) func store(_ acc: Vector, _ r: Int, _ c: Int, _ xr: UnsafePointer<Float>, _ wr: UnsafePointer<Float>) {
            let sum = finish(acc, xr, wr, from: i, k)
            y[r * ldy + c] = bias.map { sum + $0[c] } ?? sum
        }
        store(a00, 0, 0, x0, w0); store(a01, 0, 1, x0, w1); store(a02, 0, 2, x0, w2); store(a03, 0, 3, x0, w3)
        store(a10, 1, 0, x1, w0); store(a11, 1, 1, x1, w1); store(a12, 1, 2, x1, w2); store(a13, 1, 3, x1, w3)
        store(a20, 2, 0, x2, w0); store(a21, 2, 1, x2, w1); store(a22, 2, 2, x2, w2); store(a23, 2, 3, x2, w3)
        store(a30, 3, 0, x3, w0); store(a31, 3, 1, x3, w1); store(a32, 3, 2, x3, w2); store(a33, 3, 3, x3, w3)
    }
}
