import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkptKernels

/// `Arithmetic.ggml` on BF16 weights: activations rounded to BF16 as ggml's GGML_FP32_TO_BF16,
/// products in pairs as AVX512-BF16's `vdpbf16ps` defines them (matrix_bf16_pairs.h), against a
/// scalar reference written from those definitions, bit for bit, on every kernel variant this CPU
/// runs (on a CPU with AVX512-BF16, the instruction itself against the others' emulation).
struct BF16ArithmeticTests {
    /// ggml's GGML_FP32_TO_BF16 (round to nearest even, NaN kept quiet), subnormals flushed.
    static func rounded(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        var h: UInt32
        if bits & 0x7FFF_FFFF > 0x7F80_0000 {
            h = (bits >> 16) | 64
        } else {
            h = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
        }
        if h & 0x7F80 == 0 { h &= 0x8000 }
        return UInt16(h)
    }

    static func widened(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Subnormals as signed zeros.
    static func flushed(_ v: Float) -> Float { v.isSubnormal ? Float(sign: v.sign, exponentBitPattern: 0, significandBitPattern: 0) : v }

    /// One step of `vdpbf16ps` (Intel's pseudocode: an fp32 fused multiply-add with subnormal
    /// inputs as zero and subnormal outputs flushed), its flush decided as x86 does: on the result
    /// rounded to 24 bits with an unbounded exponent.
    static func step(_ acc: Float, _ w: UInt16, _ x: UInt16) -> Float {
        let (a, b) = (flushed(widened(w)), flushed(widened(x)))
        let r = flushed(acc).addingProduct(a, b)
        if r.magnitude < .leastNormalMagnitude { return flushed(r) }
        if r.magnitude == .leastNormalMagnitude, abs(Double(a) * Double(b) + Double(acc)) < 0x1.ffffffp-127 {
            return Float(sign: r.sign, exponentBitPattern: 0, significandBitPattern: 0)
        }
        return r
    }

    /// Row times activations: 16 lanes over chunks of 32 (pair 2j + 1, then 2j), zeros past the
    /// end, folded in halves.
    static func dot(_ w: ArraySlice<UInt16>, _ x: ArraySlice<UInt16>) -> Float {
        let (w, x) = (Array(w), Array(x))
        var lanes = [Float](repeating: 0, count: 16)
        for c in stride(from: 0, to: w.count, by: 32) {
            for j in 0..<16 {
                for i in [c + 2 * j + 1, c + 2 * j] {
                    lanes[j] = i < w.count ? step(lanes[j], w[i], x[i]) : step(lanes[j], 0, 0)
                }
            }
        }
        let eights = (0..<8).map { lanes[$0] + lanes[$0 + 8] }
        let fours = (0..<4).map { eights[$0] + eights[$0 + 4] }
        return (fours[0] + fours[2]) + (fours[1] + fours[3])
    }

    /// Seeded values from 2^-20 to 2^4 in magnitude, with subnormal BF16 weights, activations
    /// that round to subnormals (flushed), and rounding ties.
    static func values(_ count: Int, seed: UInt64, weights: Bool) -> [Float] {
        var g = SeededGenerator(seed: seed)
        var v = (0..<count).map { _ in
            Float(
                sign: Bool.random(using: &g) ? .minus : .plus, exponent: Int.random(in: -20...4, using: &g),
                significand: Float.random(in: 1..<2, using: &g))
        }
        for i in stride(from: 5, to: count, by: 37) { v[i] = weights ? Float(bitPattern: 0x0003_0000) : 0x1p-130 }
        if !weights, count > 70 {
            (v[68], v[69], v[70]) = (Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), 0x1.fffffep-127)
        }
        return v
    }

    /// 1-3 tokens (rows streamed), 4 and more (tiles of 4 x 4, their edges), inputs that are not
    /// whole chunks (40, 72), token blocks (4096 inputs: 32 tokens a block), partial row tiles;
    /// every variant, 1 and 2 threads.
    @Test(arguments: [
        (1, 64, 13), (2, 40, 7), (3, 96, 9), (4, 1024, 5), (5, 72, 11), (9, 64, 6), (70, 256, 21), (70, 4096, 6),
    ])
    func productsAreTheDefinedSequence(shape: (tokens: Int, inputs: Int, outputs: Int)) {
        let (tokens, inputs, outputs) = shape
        let x = Self.values(tokens * inputs, seed: 51, weights: false)
        let w = MatrixKernelTests.bf16(Self.values(outputs * inputs, seed: 52, weights: true))
        let xb = x.map(Self.rounded)
        let expected = (0..<tokens).flatMap { t in
            (0..<outputs).map { n in Self.dot(w[(n * inputs)..<((n + 1) * inputs)], xb[(t * inputs)..<((t + 1) * inputs)]) }
        }
        for variant in MatrixKernelTests.variants {
            for threads in [1, 2] {
                let y = Linear.$arithmetic.withValue(.ggml) {
                    MatrixKernelTests.run(
                        .bf16, MatrixKernelTests.bytes(w), x: x, rows: tokens, inputs: inputs, outputs: outputs, bias: nil,
                        threads: threads, variant: variant)
                }
                #expect(
                    y.map(\.bitPattern) == expected.map(\.bitPattern),
                    "\(variant), \(threads) threads: \(zip(y, expected).first { $0.bitPattern != $1.bitPattern }.map { "\($0) != \($1)" } ?? "")"
                )
            }
        }
    }

    /// Where a partial sum ends at 2^-126 after rounding with subnormals, the flush decides as
    /// `vdpbf16ps` does: 2^-126 - 2^-150 (a tie, which rounds to 2^-126 with subnormals) is flushed,
    /// 2^-126 - 2^-151 is 2^-126. Row 0 holds the first case in lane 0, row 1 the second in lane 3
    /// (every other product zero); one token (rows) and five (a tile of 4 x 4 and its edge).
    @Test func theFlushIsDecidedAsTheInstructionDoes() {
        let inputs = 32
        var w = [Float](repeating: 0, count: 4 * inputs), x = [Float](repeating: 0, count: inputs)
        for row in [0, 2] { (w[row * inputs], w[row * inputs + 1]) = (0x1p-75, 0x1p-63) }
        for row in [1, 3] { (w[row * inputs + 6], w[row * inputs + 7]) = (0x1p-75, 0x1p-63) }
        (x[0], x[1], x[6], x[7]) = (-0x1p-75, 0x1p-63, -0x1p-76, 0x1p-63)
        #expect(Float(0x1p-126).addingProduct(0x1p-75, -0x1p-75) == 0x1p-126)  // what a plain flush would keep
        for tokens in [1, 5] {
            let xs = Array([[Float]](repeating: x, count: tokens).joined())
            for variant in MatrixKernelTests.variants {
                let y = Linear.$arithmetic.withValue(.ggml) {
                    MatrixKernelTests.run(
                        .bf16, MatrixKernelTests.bytes(MatrixKernelTests.bf16(w)), x: xs, rows: tokens, inputs: inputs,
                        outputs: 4, bias: nil, threads: 1, variant: variant)
                }
                #expect(
                    y == Array([[Float]](repeating: [0, 0x1p-126, 0, 0x1p-126], count: tokens).joined()),
                    "\(variant), \(tokens) tokens: \(y)")
            }
        }
    }

    /// The kernels' BF16 activations are ggml's: ties to even, NaN quiet, infinities, a rounding
    /// to infinity, subnormals flushed, zeros after the last element.
    @Test func activationsAreRoundedAsGGMLDoes() {
        var x = KernelTests.random(45, seed: 53).map { $0 * 1000 }
        x[0] = Float(bitPattern: 0x3F80_8000)  // a tie, to even (down)
        x[1] = Float(bitPattern: 0x3F81_8000)  // a tie, to even (up)
        x[2] = Float(bitPattern: 0x7F80_0001)  // a signalling NaN, made quiet
        x[3] = -.infinity
        x[4] = .greatestFiniteMagnitude  // rounds to infinity
        x[5] = -0x1p-130  // subnormal: -0
        x[6] = 0x1.fffffep-127  // rounds up to 2^-126: kept
        x[44] = Float(bitPattern: 0xFFC1_2345)  // a negative quiet NaN
        let bytes = MatrixWeightType.bf16.quantizedActivationBytes(x.count)!
        #expect(bytes == 64 * 2)
        for variant in MatrixKernelTests.variants {
            var out = [UInt16](repeating: 0xFFFF, count: bytes / 2)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBytes {
                    variant.quantizeActivations(for: .bf16, x: xp.baseAddress!, tokens: 1, inputs: x.count, into: $0.baseAddress!)
                }
            }
            #expect(out == x.map(Self.rounded) + [UInt16](repeating: 0, count: 64 - 45), "\(variant)")
            #expect(Array(out[0..<7]) == [0x3F80, 0x3F82, 0x7FC0, 0xFF80, 0x7F80, 0x8000, 0x0080], "\(variant)")
            #expect(out[44] == 0xFFC1, "\(variant)")
        }
    }

    /// Infinities and NaN carry through as they do in ggml's products (NaN bits aside).
    @Test func nonFiniteValuesPropagate() {
        let inputs = 64
        var w = [Float](repeating: 0.5, count: 3 * inputs)
        w[10] = .infinity  // row 0: inf
        w[inputs + 20] = .nan  // row 1: NaN
        let x = [Float](repeating: 1, count: inputs)
        for variant in MatrixKernelTests.variants {
            let y = Linear.$arithmetic.withValue(.ggml) {
                MatrixKernelTests.run(
                    .bf16, MatrixKernelTests.bytes(MatrixKernelTests.bf16(w)), x: x, rows: 1, inputs: inputs, outputs: 3,
                    bias: nil, threads: 1, variant: variant)
            }
            #expect(y[0] == .infinity && y[1].isNaN && y[2] == 32, "\(variant): \(y)")
        }
    }
}
