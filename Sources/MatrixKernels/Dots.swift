/// Y = X · Wᵀ for a few tokens, row-major as in the checkpoint: one dot product along k per
/// (token, weight row). Few tokens use each weight a few times at most, so the cost is reading
/// the weights: each weight vector is loaded once (16 elements, widened from BF16 in registers)
/// and multiplied into every token's accumulator. One token takes four weight rows per pass
/// (four streams keep the memory system busier than one).
///
/// Each element is one sequence (the tests hold a scalar reference of it): a SIMD16 accumulator
/// of fused multiply-adds over the 16-element chunks of k in order, its lane sum, then the
/// remaining k in order, one fused multiply-add each.
enum Dots {
    typealias Vector = SIMD16<Float>
    /// `multiply` is for at most this many tokens; more go through `Gemm`, whose broadcast tiles
    /// win from about 4 tokens on (measured on Zen 3, 1024 -> 3584, 2 threads: 2 tokens 0.37 ms
    /// here against 0.52, 4 tokens 0.50 against 0.53, 8 tokens 1.03 against 0.57).
    static let maxTokens = 4

    /// y[t, n] = Σ_k weight[n, k] x[t, k] for n in `rows`, t < `tokens`.
    /// - Parameters: weight [*, inputs] in `E`; x [tokens, inputs]; y [tokens, outputs].
    static func multiply<E: WeightElement>(
        _ element: E.Type, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        let stride = E.bytes(inputs)
        var n = rows.lowerBound
        if tokens == 1 {
            while n + 4 <= rows.upperBound {
                rows4(E.self, weight + n * stride, stride, inputs, x, y + n)
                n += 4
            }
        }
        while n < rows.upperBound {
            let w = weight + n * stride
            var t = 0
            while t < tokens {
                let group = tokens - t
                let (xt, yt) = (x + t * inputs, y + t * outputs + n)
                if group >= 4 {
                    tokens4(E.self, w, inputs, xt, yt, outputs)
                    t += 4
                } else if group >= 2 {
                    tokens2(E.self, w, inputs, xt, yt, outputs)
                    t += 2
                } else {
                    yt.pointee = dot(E.self, w, inputs, xt)
                    t += 1
                }
            }
            n += 1
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

    /// The lane sum, then the k that do not fill a chunk.
    @inline(__always)
    static func finish<E: WeightElement>(
        _: E.Type, _ acc: Vector, _ w: UnsafeRawPointer, _ x: UnsafePointer<Float>,
        from start: Int, _ k: Int
    ) -> Float {
        var sum = acc.sum()
        var i = start
        while i < k {
            sum = sum.addingProduct(E.scalar(w, i), x[i])
            i += 1
        }
        return sum
    }

    @inline(__always)
    static func dot<E: WeightElement>(_: E.Type, _ w: UnsafeRawPointer, _ k: Int, _ x: UnsafePointer<Float>) -> Float {
        var a = Vector()
        var i = 0
        while i + 16 <= k {
            a.addProduct(E.vector(w, i), load(x + i))
            i += 16
        }
        return finish(E.self, a, w, x, from: i, k)
    }

    /// One token, four weight rows `stride` bytes apart.
    @inline(__always)
    static func rows4<E: WeightElement>(
        _: E.Type, _ w: UnsafeRawPointer, _ stride: Int, _ k: Int, _ x: UnsafePointer<Float>,
        _ y: UnsafeMutablePointer<Float>
    ) {
        let (w0, w1, w2, w3) = (w, w + stride, w + 2 * stride, w + 3 * stride)
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var i = 0
        while i + 16 <= k {
            let xa = load(x + i)
            a0.addProduct(E.vector(w0, i), xa); a1.addProduct(E.vector(w1, i), xa)
            a2.addProduct(E.vector(w2, i), xa); a3.addProduct(E.vector(w3, i), xa)
            i += 16
        }
        y[0] = finish(E.self, a0, w0, x, from: i, k)
        y[1] = finish(E.self, a1, w1, x, from: i, k)
        y[2] = finish(E.self, a2, w2, x, from: i, k)
        y[3] = finish(E.self, a3, w3, x, from: i, k)
    }

    /// One weight row, two tokens (rows of x `k` apart, of y `ldy` apart).
    @inline(__always)
    static func tokens2<E: WeightElement>(
        _: E.Type, _ w: UnsafeRawPointer, _ k: Int, _ x: UnsafePointer<Float>,
        _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        let (x0, x1) = (x, x + k)
        var a0 = Vector(), a1 = Vector()
        var i = 0
        while i + 16 <= k {
            let v = E.vector(w, i)
            a0.addProduct(v, load(x0 + i)); a1.addProduct(v, load(x1 + i))
            i += 16
        }
        y[0] = finish(E.self, a0, w, x0, from: i, k)
        y[ldy] = finish(E.self, a1, w, x1, from: i, k)
    }

    @inline(__always)
    static func tokens4<E: WeightElement>(
        _: E.Type, _ w: UnsafeRawPointer, _ k: Int, _ x: UnsafePointer<Float>,
        _ y: UnsafeMutablePointer<Float>, _ ldy: Int
    ) {
        let (x0, x1, x2, x3) = (x, x + k, x + 2 * k, x + 3 * k)
        var a0 = Vector(), a1 = Vector(), a2 = Vector(), a3 = Vector()
        var i = 0
        while i + 16 <= k {
            let v = E.vector(w, i)
            a0.addProduct(v, load(x0 + i)); a1.addProduct(v, load(x1 + i))
            a2.addProduct(v, load(x2 + i)); a3.addProduct(v, load(x3 + i))
            i += 16
        }
        y[0] = finish(E.self, a0, w, x0, from: i, k)
        y[ldy] = finish(E.self, a1, w, x1, from: i, k)
        y[2 * ldy] = finish(E.self, a2, w, x2, from: i, k)
        y[3 * ldy] = finish(E.self, a3, w, x3, from: i, k)
    }
}
