/// y = W · x for one token: bound by reading the weights, so it reads each weight byte once,
/// several rows per pass (more streams keep the memory system busier), widening BF16 in registers.
///
/// Each element is one sequence (the tests hold a scalar reference of it): two SIMD16 accumulators over alternate
/// 16-element chunks of k (even chunks, then odd), any last full chunk into the first, their sum,
/// the lane sum, then the remaining k in order.
enum Gemv {
    typealias Vector = SIMD16<Float>
#if WIDE_VECTORS
    /// Rows per pass (two accumulators each).
    static let rowTile = 4
#else
    /// AVX2 has 16 registers: two rows' accumulators fill half.
    static let rowTile = 2
#endif

    /// y[n] = Σ_k weight[n, k] x[k] for n in `rows`; weight is [*, inputs] row-major in `E`.
    static func multiply<E: WeightElement>(_ element: E.Type, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
                                                  x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        let stride = inputs * E.byteWidth
        var n = rows.lowerBound
        while n + rowTile <= rows.upperBound {
#if WIDE_VECTORS
            rows4(E.self, weight + n * stride, stride, inputs, x, y + n)
#else
            rows2(E.self, weight + n * stride, stride, inputs, x, y + n)
#endif
            n += rowTile
        }
        while n < rows.upperBound {
            y[n] = row(E.self, weight + n * stride, inputs, x)
            n += 1
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

    @inline(__always)
    static func finish<E: WeightElement>(_: E.Type, _ a: Vector, _ b: Vector, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>,
                                         from start: Int, _ k: Int) -> Float {
        var sum = (a + b).sum()
        var i = start
        while i < k {
            sum = sum.addingProduct(E.scalar(w, i), x[i])
            i += 1
        }
        return sum
    }

    @inline(__always)
    static func rows4<E: WeightElement>(_: E.Type, _ w: UnsafeRawPointer, _ stride: Int, _ k: Int, _ x: UnsafePointer<Float>,
                                        _ y: UnsafeMutablePointer<Float>) {
        let (w0, w1, w2, w3) = (w, w + stride, w + 2 * stride, w + 3 * stride)
        var a0 = Vector(), b0 = Vector(), a1 = Vector(), b1 = Vector()
        var a2 = Vector(), b2 = Vector(), a3 = Vector(), b3 = Vector()
        var i = 0
        while i + 32 <= k {
            let xa = load(x + i), xb = load(x + i + 16)
            a0.addProduct(E.vector(w0, i), xa); b0.addProduct(E.vector(w0, i + 16), xb)
            a1.addProduct(E.vector(w1, i), xa); b1.addProduct(E.vector(w1, i + 16), xb)
            a2.addProduct(E.vector(w2, i), xa); b2.addProduct(E.vector(w2, i + 16), xb)
            a3.addProduct(E.vector(w3, i), xa); b3.addProduct(E.vector(w3, i + 16), xb)
            i += 32
        }
        if i + 16 <= k {
            let xa = load(x + i)
            a0.addProduct(E.vector(w0, i), xa); a1.addProduct(E.vector(w1, i), xa)
            a2.addProduct(E.vector(w2, i), xa); a3.addProduct(E.vector(w3, i), xa)
            i += 16
        }
        y[0] = finish(E.self, a0, b0, w0, x, from: i, k)
        y[1] = finish(E.self, a1, b1, w1, x, from: i, k)
        y[2] = finish(E.self, a2, b2, w2, x, from: i, k)
        y[3] = finish(E.self, a3, b3, w3, x, from: i, k)
    }

    @inline(__always)
    static func rows2<E: WeightElement>(_: E.Type, _ w: UnsafeRawPointer, _ stride: Int, _ k: Int, _ x: UnsafePointer<Float>,
                                        _ y: UnsafeMutablePointer<Float>) {
        let (w0, w1) = (w, w + stride)
        var a0 = Vector(), b0 = Vector(), a1 = Vector(), b1 = Vector()
        var i = 0
        while i + 32 <= k {
            let xa = load(x + i), xb = load(x + i + 16)
            a0.addProduct(E.vector(w0, i), xa); b0.addProduct(E.vector(w0, i + 16), xb)
            a1.addProduct(E.vector(w1, i), xa); b1.addProduct(E.vector(w1, i + 16), xb)
            i += 32
        }
        if i + 16 <= k {
            let xa = load(x + i)
            a0.addProduct(E.vector(w0, i), xa); a1.addProduct(E.vector(w1, i), xa)
            i += 16
        }
        y[0] = finish(E.self, a0, b0, w0, x, from: i, k)
        y[1] = finish(E.self, a1, b1, w1, x, from: i, k)
    }

    @inline(__always)
    static func row<E: WeightElement>(_: E.Type, _ w: UnsafeRawPointer, _ k: Int, _ x: UnsafePointer<Float>) -> Float {
        var a = Vector(), b = Vector()
        var i = 0
        while i + 32 <= k {
            a.addProduct(E.vector(w, i), load(x + i))
            b.addProduct(E.vector(w, i + 16), load(x + i + 16))
            i += 32
        }
        if i + 16 <= k {
            a.addProduct(E.vector(w, i), load(x + i))
            i += 16
        }
        return finish(E.self, a, b, w, x, from: i, k)
    }
}
