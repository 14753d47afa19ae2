import MoECkptTensors
import MoECkptTestSupport
import Testing

@testable import MoECkptKernels

/// `Arithmetic.ggml`: activations quantized as ggml's reference functions quantize them, and the
/// integer dot products of matrix_quantized.h, against scalar references written from ggml's
/// definitions (block layouts, quantize_row_q8_0_ref, quantize_row_q8_K_ref), bit for bit, for
/// every kernel variant this CPU runs.
struct QuantizedArithmeticTests {
    /// One block of quantized activations: its scale as the kernels use it, its codes.
    struct Activations {
        var d: Float
        var q: [Int]
    }

    /// ggml's quantize_row_q8_0_ref: d = amax / 127 (stored as F16), q = roundf(x / d).
    static func q8_0(_ x: ArraySlice<Float>) -> Activations {
        let amax = x.reduce(Float(0)) { max($0, abs($1)) }
        let d = amax / 127
        let inverse: Float = d != 0 ? 1 / d : 0
        return Activations(
            d: Float(Float16(d)), q: x.map { Int(min(127, max(-127, ($0 * inverse).rounded(.toNearestOrAwayFromZero)))) })
    }

    /// ggml's quantize_row_q8_K_ref: the first element of the largest magnitude sets iscale =
    /// -127 / max; q = min(127, nearest(iscale x)), half to even; d = 1 / iscale.
    static func q8_K(_ x: ArraySlice<Float>) -> Activations {
        var (amax, largest): (Float, Float) = (0, 0)
        for v in x where abs(v) > amax { (amax, largest) = (abs(v), v) }
        guard amax != 0 else { return Activations(d: 0, q: Array(repeating: 0, count: x.count)) }
        let iscale = -127 / largest
        return Activations(d: 1 / iscale, q: x.map { Int(min(127, ($0 * iscale).rounded(.toNearestOrEven))) })
    }

    static func f16(_ bytes: [UInt8], _ at: Int) -> Float { Float(Float16(bitPattern: UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)) }

    /// A weight row's 32-element units: codes, and for the k-quants the scale of each code's 16
    /// and the minimum term's scale and sub-block minimums; one super-block (or block) at a time.
    struct Unit {
        var codes: [Int]
        var scales: [Int]  // per 16 codes
        var d: Float
        var dmin: Float = 0
        var minimums: [Int] = []  // per 32 codes
    }

    /// ggml's block layouts, decoded as its dequantize_row_* functions read them.
    static func units(_ type: MatrixWeightType, row: [UInt8]) -> [Unit] {
        let blockBytes = type.bytes(type.blockSize)
        return stride(from: 0, to: row.count, by: blockBytes).map { start in
            let b = Array(row[start..<(start + blockBytes)])
            switch type {
            case .q8_0:
                return Unit(codes: (0..<32).map { Int(Int8(bitPattern: b[2 + $0])) }, scales: [1, 1], d: f16(b, 0))
            case .q4_0:
                return Unit(
                    codes: (0..<32).map { Int($0 < 16 ? b[2 + $0] & 0xF : b[2 + $0 - 16] >> 4) - 8 }, scales: [1, 1], d: f16(b, 0))
            case .q4_K, .q5_K:
                // get_scale_min_k4
                func scaleMin(_ j: Int) -> (Int, Int) {
                    let q = Array(b[4..<16])
                    if j < 4 { return (Int(q[j] & 63), Int(q[j + 4] & 63)) }
                    return (Int((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)), Int((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
                }
                let nibbles = type == .q4_K ? 16 : 48
                var codes: [Int] = []
                for j in 0..<8 {
                    for i in 0..<32 {
                        let byte = b[nibbles + (j / 2) * 32 + i]
                        var code = Int(j % 2 == 0 ? byte & 0xF : byte >> 4)
                        if type == .q5_K { code |= Int((b[16 + i] >> j) & 1) << 4 }
                        codes.append(code)
                    }
                }
                return Unit(
                    codes: codes, scales: (0..<16).map { scaleMin($0 / 2).0 }, d: f16(b, 0), dmin: f16(b, 2),
                    minimums: (0..<8).map { scaleMin($0).1 })
            default:  // Q6_K: ql[128], qh[64], scales[16], d
                var codes = [Int](repeating: 0, count: 256)
                for half in 0..<2 {
                    for l in 0..<32 {
                        let (low0, low1, high) = (Int(b[64 * half + l]), Int(b[64 * half + l + 32]), Int(b[128 + 32 * half + l]))
                        codes[128 * half + l] = ((low0 & 0xF) | ((high >> 0) & 3) << 4) - 32
                        codes[128 * half + l + 32] = ((low1 & 0xF) | ((high >> 2) & 3) << 4) - 32
                        codes[128 * half + l + 64] = ((low0 >> 4) | ((high >> 4) & 3) << 4) - 32
                        codes[128 * half + l + 96] = ((low1 >> 4) | ((high >> 6) & 3) << 4) - 32
                    }
                }
                return Unit(codes: codes, scales: (0..<16).map { Int(Int8(bitPattern: b[192 + $0])) }, d: f16(b, 208))
            }
        }
    }

    /// The defined sequence (matrix_quantized.h) of one weight row and one token's activations.
    static func dot(_ type: MatrixWeightType, row: [UInt8], x: ArraySlice<Float>) -> Float {
        let units = units(type, row: row)
        let size = type.blockSize
        /// Lane l of the 32 codes from `first`: the sum of 4 scaled products, exact.
        func lanes(_ u: Unit, _ a: Activations, _ first: Int) -> [Int] {
            (0..<8).map { l in
                (0..<4).reduce(0) { sum, i in
                    let k = first + 4 * l + i
                    return sum + u.scales[k / 16] * u.codes[k] * a.q[k]
                }
            }
        }
        if size == 32 {
            // Block b's exact total into chain b mod 8.
            var chains = [Float](repeating: 0, count: 8)
            for (b, u) in units.enumerated() {
                let a = q8_0(x[(x.startIndex + 32 * b)...].prefix(32))
                chains[b % 8] = chains[b % 8].addingProduct(u.d * a.d, Float(lanes(u, a, 0).reduce(0, +)))
            }
            return laneSum(chains)
        }
        var chain = [Float](repeating: 0, count: 8)
        var minimums: Float = 0
        for (s, u) in units.enumerated() {
            let a = q8_K(x[(x.startIndex + 256 * s)...].prefix(256))
            var total = [Int](repeating: 0, count: 8)
            for j in 0..<8 { total = zip(total, lanes(u, a, 32 * j)).map { $0 + $1 } }
            for i in 0..<8 { chain[i] = chain[i].addingProduct(u.d * a.d, Float(total[i])) }
            if !u.minimums.isEmpty {
                var offsets = 0
                for j in 0..<8 { offsets += u.minimums[j] * a.q[(32 * j)..<(32 * j + 32)].reduce(0, +) }
                minimums = minimums.addingProduct(u.dmin * a.d, Float(offsets))
            }
        }
        return laneSum(chain) - minimums
    }

    /// Lanes summed in order, from the first.
    static func laneSum(_ lanes: [Float]) -> Float { lanes.dropFirst().reduce(lanes[0], +) }

    /// Seeded random blocks with F16 scales from 2^-10 to 2^5 (never inf or NaN).
    static func blocks(_ type: MatrixWeightType, count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        let blockBytes = type.bytes(type.blockSize)
        var bytes = (0..<(type.bytes(count))).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let scaleOffsets: [Int] = [.q4_K: [0, 2], .q5_K: [0, 2], .q6_K: [208]][type] ?? [0]
        for block in stride(from: 0, to: bytes.count, by: blockBytes) {
            for offset in scaleOffsets {
                bytes[block + offset + 1] = (bytes[block + offset + 1] & 0x83) | UInt8.random(in: 5...20, using: &generator) << 2
            }
        }
        return bytes
    }

    static let types: [MatrixWeightType] = [.q8_0, .q4_0, .q4_K, .q5_K, .q6_K]

    /// 1 to 4 tokens (one token group), 70 (prefill: blocks of 64 tokens, groups of 4, 2 and 1),
    /// 11 and 3 blocks of 32 (after and without 8 at a time), partial 16-row thread ranges; 9, 64
    /// and 70 tokens on 21 and 37 rows also take VNNI's groups of 16 rows (partly or wholly past
    /// the last row) and chains of 1 or 2 blocks, 300 tokens their blocks of 256 tokens; every
    /// variant, 1 and 2 threads, bit for bit.
    @Test(arguments: [
        (1, 256, 13), (2, 512, 7), (3, 768, 17), (4, 2304, 19), (70, 256, 21), (2, 352, 5), (3, 96, 17), (9, 352, 37),
        (64, 512, 37), (300, 256, 5),
    ])
    func productsAreTheDefinedSequence(shape: (tokens: Int, inputs: Int, outputs: Int)) {
        let (tokens, inputs, outputs) = shape
        var x = KernelTests.random(tokens * inputs, seed: 41).map { $0 * 3 }
        for i in 0..<32 { x[i] = 0 }  // a zero block: d = 0
        // Ties: 127, the largest of its block and super-block, sets d = 1 and iscale = -1; Q8_0
        // rounds 2.5 and -0.5 away from zero, Q8_K to even.
        (x[64], x[65], x[66]) = (127, 2.5, -0.5)
        // A super-block of one sign: sums of 32 codes near 32 x 127, times minimums up to 63.
        for i in 256..<min(512, x.count) { x[i] = abs(x[i]) + 2 }
        for type in Self.types where inputs % type.blockSize == 0 {
            let weights = Self.blocks(type, count: outputs * inputs, seed: 42)
            let rowBytes = type.bytes(inputs)
            let expected = (0..<tokens).flatMap { t in
                (0..<outputs).map { n in
                    Self.dot(type, row: Array(weights[(n * rowBytes)..<((n + 1) * rowBytes)]), x: x[(t * inputs)..<((t + 1) * inputs)])
                }
            }
            for variant in MatrixKernelTests.variants {
                for threads in [1, 2] {
                    let y = Linear.$arithmetic.withValue(.ggml) {
                        MatrixKernelTests.run(
                            type, weights, x: x, rows: tokens, inputs: inputs, outputs: outputs, bias: nil, threads: threads,
                            variant: variant)
                    }
                    #expect(
                        y.map(\.bitPattern) == expected.map(\.bitPattern),
                        "\(type) on \(variant), \(threads) threads: \(zip(y, expected).first { $0.bitPattern != $1.bitPattern }.map { "\($0) != \($1)" } ?? "")"
                    )
                }
            }
        }
    }

    /// The kernels' quantized activations are ggml's: Q8_0 as moeckpt's GGUF writer quantizes
    /// (checked against gguf.quants), Q8_K as the reference above.
    @Test func activationsAreQuantizedAsGGMLDoes() {
        var x = KernelTests.random(1024, seed: 43).map { $0 * 40 }
        for i in 32..<64 { x[i] = 0 }
        x[300] = -x.map(abs).max()! * 2  // a negative largest magnitude sets Q8_K's sign
        x[301] = -x[300]  // and a tie after it does not
        var blocks = [UInt8](repeating: 0, count: MatrixWeightType.q8_0.bytes(x.count))
        x.withUnsafeBufferPointer { xp in
            blocks.withUnsafeMutableBytes { GGMLBlocks.quantizeQ8_0(xp.baseAddress!, count: x.count, into: $0.baseAddress!) }
        }
        for type in [MatrixWeightType.q8_0, .q4_K] {
            let rowBytes = type.quantizedActivationBytes(x.count)!
            var out = [UInt8](repeating: 0, count: rowBytes)
            for variant in MatrixKernelTests.variants {
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBytes {
                        variant.quantizeActivations(for: type, x: xp.baseAddress!, tokens: 1, inputs: x.count, into: $0.baseAddress!)
                    }
                }
                func float(_ at: Int) -> Float { out.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: Float.self) } }
                if type == .q8_0 {
                    // The codes, then each block's scale, then each block's sum.
                    let k = x.count
                    for b in 0..<(k / 32) {
                        #expect(float(k + 4 * b) == Self.f16(blocks, 34 * b), "\(variant) block \(b)")
                        let codes = (0..<32).map { Int(Int8(bitPattern: out[32 * b + $0])) }
                        #expect(codes == (0..<32).map { Int(Int8(bitPattern: blocks[34 * b + 2 + $0])) }, "\(variant) block \(b)")
                        let sum = out.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: k + k / 8 + 4 * b, as: Int32.self) }
                        #expect(Int(sum) == codes.reduce(0, +))
                    }
                } else {
                    for s in 0..<(x.count / 256) {
                        let at = s * 276, expected = Self.q8_K(x[(256 * s)..<(256 * s + 256)])
                        #expect(float(at).bitPattern == expected.d.bitPattern, "\(variant) super-block \(s)")
                        let codes = (0..<256).map { Int(Int8(bitPattern: out[at + 20 + $0])) }
                        #expect(codes == expected.q, "\(variant) super-block \(s)")
                        let sums = (0..<8).map { j in
                            out.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: at + 4 + 2 * j, as: Int16.self)) }
                        }
                        #expect(sums == (0..<8).map { expected.q[(32 * $0)..<(32 * $0 + 32)].reduce(0, +) })
                    }
                }
            }
        }
    }

    /// What ggml's arithmetic changes: within 2% of the exact products on these rows, for one
    /// token and for a prefill (as llama.cpp, at every batch size); other types ignore it.
    @Test func closeToExactAndOnlyWhereItApplies() {
        let (inputs, outputs) = (1024, 32)
        let x = KernelTests.random(70 * inputs, seed: 44)
        for type in Self.types + [.bf16, .f16] {
            let floats = KernelTests.random(outputs * inputs, seed: 45)
            let weights =
                switch type {
                case .bf16: MatrixKernelTests.bytes(MatrixKernelTests.bf16(floats))
                case .f16: MatrixKernelTests.bytes(floats.map { Float16($0) })
                default: Self.blocks(type, count: outputs * inputs, seed: 45)
                }
            for tokens in [1, 70] {
                let run = { (arithmetic: Arithmetic) in
                    Linear.$arithmetic.withValue(arithmetic) {
                        MatrixKernelTests.run(
                            type, weights, x: x, rows: tokens, inputs: inputs, outputs: outputs, bias: nil, threads: 2,
                            variant: .selected)
                    }
                }
                let (exact, ggml) = (run(.exact), run(.ggml))
                if type == .f16 {
                    #expect(exact.map(\.bitPattern) == ggml.map(\.bitPattern), "\(type), \(tokens) tokens")
                } else {
                    let scale = exact.map(abs).max()!
                    let error = zip(exact, ggml).map { abs($0 - $1) }.max()!
                    #expect(error > 0 && error < 0.02 * scale, "\(type): \(error) of \(scale)")
                }
            }
        }
    }
}
