import Glibc
import MoECkptTensors
import MoECkptTestSupport
import Testing

@testable import MoECkptKernels

/// The matrix kernels against scalar references of the exact sequence of operations each element
/// is defined by, compared bit for bit, for every kernel variant this CPU runs.
struct MatrixKernelTests {
    /// Panel products: one fused multiply-add per k, in order, from zero.
    static func chain(_ w: ArraySlice<Float>, _ x: ArraySlice<Float>) -> Float {
        var sum: Float = 0
        for (a, b) in zip(w, x) { sum = sum.addingProduct(a, b) }
        return sum
    }

    /// Dot products (few tokens): 16 lane chains over the even whole 16-element chunks and 16
    /// over the odd ones, their lane-wise sum, its lane sum, then the rest in order.
    static func dot(_ w: ArraySlice<Float>, _ x: ArraySlice<Float>) -> Float {
        let (w, x) = (Array(w), Array(x))
        var lanes = [SIMD16<Float>(), SIMD16<Float>()]
        let chunks = w.count / 16
        for c in 0..<chunks {
            for l in 0..<16 { lanes[c % 2][l] = lanes[c % 2][l].addingProduct(w[c * 16 + l], x[c * 16 + l]) }
        }
        var sum = (lanes[0] + lanes[1]).sum()
        for k in (chunks * 16)..<w.count { sum = sum.addingProduct(w[k], x[k]) }
        return sum
    }

    static func bf16(_ values: [Float]) -> [UInt16] { values.map { UInt16($0.bitPattern >> 16) } }

    /// Block scales for `run`: the values and the block's rows and columns.
    struct TestScales {
        let values: [Float]
        let rows: Int
        let columns: Int
        let stride: Int
        var biases: [Float]? = nil
    }

    static func run(
        _ type: MatrixWeightType, _ weightBytes: [UInt8], x: [Float], rows: Int, inputs: Int, outputs: Int,
        bias: [Float]?, threads: Int, variant: KernelVariant, scales: TestScales? = nil
    ) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outputs)
        (scales?.values ?? [0]).withUnsafeBufferPointer { s in
            (scales?.biases ?? [0]).withUnsafeBufferPointer { o in
                let blockScales = scales.map {
                    BlockScales(
                        values: s.baseAddress!, rows: $0.rows, columns: $0.columns, stride: $0.stride,
                        biases: $0.biases == nil ? nil : o.baseAddress!)
                }
                weightBytes.withUnsafeBytes { w in
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            func go(_ b: UnsafePointer<Float>?) {
                                Linear.forward(
                                    type, x: xp.baseAddress!, rows: rows, inputs: inputs, weight: w.baseAddress!, scales: blockScales,
                                    outputs: outputs, bias: b, into: yp.baseAddress!, threads: threads, variant: variant)
                            }
                            if let bias { bias.withUnsafeBufferPointer { go($0.baseAddress!) } } else { go(nil) }
                        }
                    }
                }
            }
        }
        return y
    }

    static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    static var variants: [KernelVariant] { KernelVariant.allCases.filter(\.isSupported) }

    /// Token counts on both sides of the dot-product limit and of panel widths (8, 16, 32); input
    /// sizes around the vector width and across the 1024-element k-block; output counts that
    /// leave partial row tiles.
    @Test(arguments: [
        (1, 40, 13), (2, 17, 7), (4, 33, 9), (5, 16, 6), (8, 5, 8), (9, 1030, 14), (17, 64, 50),
        (33, 31, 1), (40, 2100, 19), (70, 3, 25),
    ])
    func everyElementIsItsDefinedSequence(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 11)
        // BF16-exact values, so one set of weights serves both dtypes.
        let w = Self.bf16(KernelTests.random(outputs * inputs, seed: 12)).map { Float(bitPattern: UInt32($0) << 16) }
        let bias = KernelTests.random(outputs, seed: 13)
        for variant in Self.variants {
            let sequence = rows <= variant.maxDotTokens ? Self.dot : Self.chain
            var expected = [Float](repeating: 0, count: rows * outputs)
            for t in 0..<rows {
                for n in 0..<outputs {
                    expected[t * outputs + n] =
                        sequence(w[(n * inputs)..<((n + 1) * inputs)], x[(t * inputs)..<((t + 1) * inputs)])
                        + bias[n]
                }
            }
            for threads in [1, 2, 3] {
                let f32 = Self.run(
                    .f32, Self.bytes(w), x: x, rows: rows, inputs: inputs, outputs: outputs, bias: bias,
                    threads: threads, variant: variant)
                let bf16 = Self.run(
                    .bf16, Self.bytes(Self.bf16(w)), x: x, rows: rows, inputs: inputs, outputs: outputs,
                    bias: bias, threads: threads, variant: variant)
                #expect(f32.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant) f32, \(threads) threads")
                #expect(bf16.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant) bf16 in place, \(threads) threads")
            }
        }
    }

    /// Every E2M1 value times a power of two is an fp32, so MXFP4 blocks widen exactly and their
    /// products are the defined sequence on the blocks' values, bit for bit; the blocks' byte
    /// offsets (17 per 32 weights) hold across rows, k-blocks and partial row tiles.
    @Test(arguments: [(1, 32, 13), (3, 64, 7), (4, 96, 9), (9, 1056, 14), (40, 2080, 19)])
    func mxfp4BlocksAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 16)
        let blocks = MXFP4Blocks.quantize(KernelTests.random(outputs * inputs, seed: 17).map { $0 * 3 }, columns: inputs)
        let w = blocks.withUnsafeBytes { b in
            (0..<(outputs * inputs)).map { MXFP4Blocks.value(b.baseAddress! + ($0 / inputs) * inputs / 32 * 17, $0 % inputs) }
        }
        let codes = Set(blocks.enumerated().filter { $0.offset % 17 != 0 }.flatMap { [$0.element & 0xF, $0.element >> 4] })
        #expect(codes.count == 15, "every code but -0 occurs")
        Self.expectTheSequence(.mxfp4, blocks, values: w, x: x, rows: rows, inputs: inputs, outputs: outputs)
    }

    /// Products on blocks (every variant, 1 and 2 threads) against the defined sequence on the
    /// blocks' values, bit for bit.
    static func expectTheSequence(
        _ type: MatrixWeightType, _ blocks: [UInt8], values w: [Float], x: [Float], rows: Int, inputs: Int, outputs: Int,
        scales: TestScales? = nil
    ) {
        for variant in variants {
            let sequence = rows <= variant.maxDotTokens ? dot : chain
            var expected = [Float](repeating: 0, count: rows * outputs)
            for t in 0..<rows {
                for n in 0..<outputs {
                    expected[t * outputs + n] = sequence(w[(n * inputs)..<((n + 1) * inputs)], x[(t * inputs)..<((t + 1) * inputs)])
                }
            }
            for threads in [1, 2] {
                let y = run(
                    type, blocks, x: x, rows: rows, inputs: inputs, outputs: outputs, bias: nil, threads: threads, variant: variant,
                    scales: scales)
                #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant) \(type), \(threads) threads")
            }
        }
    }

    /// Q8_0 and Q4_0 blocks widen exactly too (q d, (q - 8) d: small integers times an F16
    /// scale), so their products are the defined sequence on the values ggml's dequantization
    /// gives, bit for bit; a zero block, a subnormal, an infinite and a NaN scale included.
    @Test(arguments: [(1, 32, 13), (3, 64, 7), (4, 96, 9), (9, 1056, 14), (40, 2080, 19)])
    func q8_0AndQ4_0BlocksAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 18)
        var w = KernelTests.random(outputs * inputs, seed: 19).map { $0 * 2 }
        for i in 0..<min(64, w.count) { w[i] = i < 32 ? 0 : w[i] * 1e-9 }
        typealias Codec = (UnsafePointer<Float>, Int, UnsafeMutableRawPointer) -> Void
        typealias Decoder = (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void
        let codecs: [(MatrixWeightType, Codec, Decoder)] = [
            (.q8_0, { GGMLBlocks.quantizeQ8_0($0, count: $1, into: $2) }, { GGMLBlocks.dequantizeQ8_0($0, count: $1, into: $2) }),
            (.q4_0, { GGMLBlocks.quantizeQ4_0($0, count: $1, into: $2) }, { GGMLBlocks.dequantizeQ4_0($0, count: $1, into: $2) }),
        ]
        for (type, quantize, dequantize) in codecs {
            var blocks = [UInt8](repeating: 0, count: type.bytes(w.count))
            var values = [Float](repeating: .nan, count: w.count)
            w.withUnsafeBufferPointer { wp in blocks.withUnsafeMutableBytes { quantize(wp.baseAddress!, w.count, $0.baseAddress!) } }
            // Blocks 2 and 3 scaled by infinity and by a signalling NaN with a payload (F16 0x7D01).
            let blockBytes = type.bytes(32)
            for (block, scale) in [(2, UInt16(0x7C00)), (3, 0x7D01)] where (block + 1) * blockBytes <= blocks.count {
                blocks[block * blockBytes] = UInt8(scale & 0xFF)
                blocks[block * blockBytes + 1] = UInt8(scale >> 8)
            }
            blocks.withUnsafeBytes { b in values.withUnsafeMutableBufferPointer { dequantize(b.baseAddress!, w.count, $0.baseAddress!) } }
            Self.expectTheSequence(type, blocks, values: values, x: x, rows: rows, inputs: inputs, outputs: outputs)
        }
    }

    /// Q4_K, Q5_K and Q6_K super-blocks of seeded random codes and scales (finite F16 d, dmin): the
    /// widened weights are the values ggml's dequantization gives (`GGMLBlocks`, checked against
    /// gguf.quants), so products are the defined sequence on them, bit for bit, across rows,
    /// k-blocks of 1024 and partial row tiles.
    @Test(arguments: [(1, 256, 13), (3, 512, 7), (9, 1280, 14), (40, 2304, 19)])
    func kQuantBlocksAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 22)
        for (type, blockBytes, scaleOffsets) in [
            (MatrixWeightType.q4_K, GGMLBlocks.q4_KBytes, [0, 2]), (.q6_K, GGMLBlocks.q6_KBytes, [208]),
            (.q5_K, GGMLBlocks.q5_KBytes, [0, 2]),
        ] {
            var generator = SeededGenerator(seed: 23)
            var blocks = (0..<(outputs * inputs / 256 * blockBytes)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for block in stride(from: 0, to: blocks.count, by: blockBytes) {
                for offset in scaleOffsets {
                    // F16 exponents 5-20: scales from 2^-10 to 2^5, never inf or NaN.
                    blocks[block + offset + 1] = (blocks[block + offset + 1] & 0x83) | UInt8.random(in: 5...20, using: &generator) << 2
                }
            }
            let count = outputs * inputs
            var values = [Float](repeating: .nan, count: count)
            blocks.withUnsafeBytes { b in
                values.withUnsafeMutableBufferPointer {
                    switch type {
                    case .q4_K: GGMLBlocks.dequantizeQ4_K(b.baseAddress!, count: count, into: $0.baseAddress!)
                    case .q5_K: GGMLBlocks.dequantizeQ5_K(b.baseAddress!, count: count, into: $0.baseAddress!)
                    default: GGMLBlocks.dequantizeQ6_K(b.baseAddress!, count: count, into: $0.baseAddress!)
                    }
                }
            }
            Self.expectTheSequence(type, blocks, values: values, x: x, rows: rows, inputs: inputs, outputs: outputs)
        }
    }

    /// The codes as the OCP table gives them, and gpt-oss's pair order (weights 2b, 2b + 1 in the
    /// low and high nibble of byte b) moved into the kernels' (j and j + 16 in byte j).
    @Test func mxfp4CodesAndTheirOrder() {
        var pairs = [UInt8](repeating: 0, count: 16)
        for k in 0..<32 { pairs[k / 2] |= UInt8(k % 16) << (k % 2 == 0 ? 0 : 4) }
        var block = [UInt8](repeating: 0, count: 17)
        pairs.withUnsafeBytes { p in
            block.withUnsafeMutableBytes { MXFP4Blocks.block(fromPairs: p.baseAddress!, scale: 128, into: $0.baseAddress!) }
        }
        let decoded = block.withUnsafeBytes { b in (0..<32).map { MXFP4Blocks.value(b.baseAddress!, $0) } }
        #expect(decoded.map(\.bitPattern) == (0..<32).map { (MXFP4Blocks.values[$0 % 16] * 2).bitPattern })
        #expect(MXFP4Blocks.values == [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])
    }

    /// F16 weights are read in place too, widened exactly (Swift's own Float16 conversion is the
    /// reference), normals and subnormals; products are the defined sequence on their values.
    @Test(arguments: [(1, 40, 13), (3, 64, 7), (9, 1030, 14), (40, 2100, 19)])
    func f16WeightsAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 33)
        var generator = SeededGenerator(seed: 34)
        // Finite halves: exponent fields 0-30 (0 is subnormal or zero).
        let halves = (0..<(outputs * inputs)).map { _ -> UInt16 in
            let bits = UInt16.random(in: 0...UInt16.max, using: &generator)
            return (bits & 0x83FF) | UInt16(bits % 31) << 10
        }
        let values = halves.map { Float(Float16(bitPattern: $0)) }
        Self.expectTheSequence(.f16, Self.bytes(halves), values: values, x: x, rows: rows, inputs: inputs, outputs: outputs)
    }

    /// FP8 E4M3 codes under block scales (DeepSeek-V3's weights) are the defined sequence on the
    /// dequantized values, code widened then times its block's scale in fp32, bit for bit: the
    /// values the dequantized copy held. Blocks of 2 rows x 32 columns here, so that small shapes
    /// cross many (row tiles, k-blocks of 1024 and 16-element chunks straddle none).
    @Test(arguments: [(1, 32, 13), (3, 64, 7), (4, 96, 9), (9, 1056, 14), (40, 2080, 19), (2, 80, 5)])
    func fp8CodesUnderBlockScalesAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 26)
        // Every finite code (0x7F and 0xFF are NaN), seeded order.
        var generator = SeededGenerator(seed: 27)
        let codes = (0..<(outputs * inputs)).map { _ -> UInt8 in
            let c = UInt8.random(in: 0...255, using: &generator)
            return c & 0x7F == 0x7F ? c ^ 1 : c
        }
        let stride = (inputs + 31) / 32
        let scaleValues = KernelTests.random(((outputs + 1) / 2) * stride, seed: 28).map { 0.5 + abs($0) }
        let scales = TestScales(values: scaleValues, rows: 2, columns: 32, stride: stride)
        let w = (0..<(outputs * inputs)).map { i -> Float in
            let (n, k) = (i / inputs, i % inputs)
            return Float(bitPattern: Minifloat.f8E4M3.table[Int(codes[i])]) * scaleValues[(n / 2) * stride + k / 32]
        }
        Self.expectTheSequence(.f8e4m3, codes, values: w, x: x, rows: rows, inputs: inputs, outputs: outputs, scales: scales)
    }

    /// MLX's affine codes (2 and 4 bits, four and two a byte; 8 bits) are the defined sequence on the values
    /// MLX's dequantize gives, scale q then plus bias in fp32, bit for bit: the values the
    /// dequantized copy held. Groups of 32 here, so small shapes cross many.
    @Test(arguments: [(1, 32, 13), (3, 64, 7), (4, 96, 9), (9, 1056, 14), (40, 2080, 19), (2, 160, 5)])
    func mlxAffineCodesAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 30)
        for (type, bits) in [(MatrixWeightType.mlx2, 2), (.mlx4, 4), (.mlx8, 8)] {
            var generator = SeededGenerator(seed: 31)
            let codes = (0..<(outputs * inputs)).map { _ in Int.random(in: 0..<(1 << bits), using: &generator) }
            let stride = inputs / 32
            let scaleValues = KernelTests.random(outputs * stride, seed: 32)
            let biases = KernelTests.random(outputs * stride, seed: 33)
            let scales = TestScales(values: scaleValues, rows: 1, columns: 32, stride: stride, biases: biases)
            let w = (0..<(outputs * inputs)).map { i -> Float in
                let g = (i / inputs) * stride + (i % inputs) / 32
                let product = scaleValues[g] * Float(codes[i])  // two roundings, as MLX's dequantize
                return product + biases[g]
            }
            Self.expectTheSequence(
                type, Self.mlxPacked(codes, bits: bits), values: w, x: x, rows: rows, inputs: inputs, outputs: outputs, scales: scales)
        }
    }

    /// Codes as MLX packs them: a little-endian bit stream, code i at bits [i bits, (i + 1) bits).
    static func mlxPacked(_ codes: [Int], bits: Int) -> [UInt8] {
        let perByte = 8 / bits
        return (0..<(codes.count / perByte)).map { j in
            (0..<perByte).reduce(UInt8(0)) { byte, k in byte | UInt8(codes[j * perByte + k] << (k * bits)) }
        }
    }

    /// MLX's E2M1 codes (mxfp4, nvfp4), every code in every position, times their group's scale
    /// (one rounded product, as MLX's dequantize): the defined sequence on those values, bit for
    /// bit. Groups of 16 (nvfp4's) and 32 (mxfp4's); a scale of 2^-127 (E8M0's code 0) included.
    @Test(arguments: [(1, 32, 13), (3, 64, 7), (4, 96, 9), (9, 1056, 14), (2, 160, 5)])
    func mlxE2M1CodesAreTheSequenceOnTheirValues(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = KernelTests.random(rows * inputs, seed: 34)
        let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
        for group in [16, 32] {
            var generator = SeededGenerator(seed: 35)
            let codes = (0..<(outputs * inputs)).map { _ in Int.random(in: 0..<16, using: &generator) }
            let stride = inputs / group
            var scaleValues = KernelTests.random(outputs * stride, seed: 36)
            scaleValues[0] = Float(bitPattern: 0x0040_0000)
            let scales = TestScales(values: scaleValues, rows: 1, columns: group, stride: stride)
            let w = (0..<(outputs * inputs)).map { i in e2m1[codes[i]] * scaleValues[(i / inputs) * stride + (i % inputs) / group] }
            Self.expectTheSequence(
                .mlxE2M1, Self.mlxPacked(codes, bits: 4), values: w, x: x, rows: rows, inputs: inputs, outputs: outputs,
                scales: scales)
        }
    }

    /// Every FP8 E4M3 pattern widens as the casts widen it (NaN included), under a scale of one.
    @Test func everyFP8PatternWidensExactly() {
        let patterns = (0...255).map { UInt8($0) }
        for variant in Self.variants {
            var out = [Float](repeating: 0, count: 256)
            [Float](repeating: 1, count: 2).withUnsafeBufferPointer { ones in
                let scales = BlockScales(values: ones.baseAddress!, rows: 16, columns: 16, stride: 1)
                patterns.withUnsafeBytes { b in
                    out.withUnsafeMutableBufferPointer {
                        variant.widenRows(.f8e4m3, weight: b.baseAddress!, scales: scales, rows: 0..<16, columns: 16, into: $0.baseAddress!)
                    }
                }
            }
            #expect(out.map(\.bitPattern) == Minifloat.f8E4M3.table, "\(variant)")
        }
    }

    /// Every F16 bit pattern widens as Swift's Float16 does; a NaN keeps its sign and payload
    /// (as the casts do), where a hardware conversion may quiet it.
    @Test func everyF16PatternWidensExactly() {
        let patterns = (0...UInt16.max).map { $0 }
        for variant in Self.variants {
            var out = [Float](repeating: 0, count: patterns.count)
            Self.bytes(patterns).withUnsafeBytes { b in
                out.withUnsafeMutableBufferPointer {
                    variant.widenRows(.f16, weight: b.baseAddress!, rows: 0..<256, columns: 256, into: $0.baseAddress!)
                }
            }
            let wrong = patterns.filter { h in
                let value = out[Int(h)], half = Float16(bitPattern: h)
                guard half.isNaN else { return value.bitPattern != Float(half).bitPattern }
                return value.bitPattern != (UInt32(h & 0x8000) << 16 | 0x7F80_0000 | UInt32(h & 0x3FF) << 13)
            }
            #expect(wrong.isEmpty, "\(variant): \(wrong.prefix(4))")
        }
    }

    /// Rows widened where they are (embedding lookups) are ggml's dequantization and BF16's
    /// widening, bit for bit, in every variant.
    @Test func widenedRowsAreTheDequantizedValues() {
        let (rows, columns) = (5, 512)
        var generator = SeededGenerator(seed: 31)
        var blocks = (0..<(rows * columns / 256 * GGMLBlocks.q4_KBytes)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for block in stride(from: 0, to: blocks.count, by: GGMLBlocks.q4_KBytes) {
            for offset in [0, 2] { blocks[block + offset + 1] = (blocks[block + offset + 1] & 0x83) | 10 << 2 }
        }
        var expected = [Float](repeating: .nan, count: rows * columns)
        blocks.withUnsafeBytes { b in
            expected.withUnsafeMutableBufferPointer {
                GGMLBlocks.dequantizeQ4_K(b.baseAddress!, count: rows * columns, into: $0.baseAddress!)
            }
        }
        let halves = Self.bf16(KernelTests.random(rows * columns, seed: 32))
        for variant in Self.variants {
            for (type, bytes, values) in [
                (MatrixWeightType.q4_K, blocks, expected), (.bf16, Self.bytes(halves), halves.map { Float(bitPattern: UInt32($0) << 16) }),
            ] {
                var out = [Float](repeating: .nan, count: 2 * columns)
                bytes.withUnsafeBytes { b in
                    out.withUnsafeMutableBufferPointer {
                        variant.widenRows(type, weight: b.baseAddress!, rows: 2..<4, columns: columns, into: $0.baseAddress!)
                    }
                }
                #expect(out.map(\.bitPattern) == values[(2 * columns)..<(4 * columns)].map(\.bitPattern), "\(variant) \(type)")
            }
        }
    }

    @Test func bf16WeightsAreReadInPlaceAtAnyAlignment() {
        let (rows, inputs, outputs) = (20, 37, 11)
        let x = KernelTests.random(rows * inputs, seed: 14)
        let w = Self.bf16(KernelTests.random(outputs * inputs, seed: 15))
        let reference = Self.run(
            .bf16, Self.bytes(w), x: x, rows: rows, inputs: inputs, outputs: outputs, bias: nil,
            threads: 1, variant: .selected)
        // The same bytes one byte further into a buffer (a safetensors data offset need not be even).
        var shifted = [UInt8](repeating: 0, count: 1) + Self.bytes(w)
        shifted.withUnsafeMutableBytes { buffer in
            var y = [Float](repeating: .nan, count: rows * outputs)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    Linear.forward(
                        .bf16, x: xp.baseAddress!, rows: rows, inputs: inputs, weight: UnsafeRawPointer(buffer.baseAddress! + 1),
                        outputs: outputs, bias: nil, into: yp.baseAddress!, threads: 2)
                }
            }
            #expect(y.map(\.bitPattern) == reference.map(\.bitPattern))
        }
    }

    @Test func tokenPanelsRoundTripAndScatterWeightedRows() {
        let layout = TokenPanels()
        let (tokens, features) = (layout.width + 3, 5)
        let x = KernelTests.random(tokens * features, seed: 16)
        var panels = [Float](repeating: .nan, count: layout.padded(tokens) * features)
        var back = [Float](repeating: .nan, count: tokens * features)
        x.withUnsafeBufferPointer { xp in
            panels.withUnsafeMutableBufferPointer {
                layout.fromRows(xp.baseAddress!, rows: tokens, features: features, into: $0.baseAddress!)
            }
            panels.withUnsafeBufferPointer { p in
                back.withUnsafeMutableBufferPointer {
                    layout.toRows(p.baseAddress!, rows: tokens, features: features, bias: nil, into: $0.baseAddress!)
                }
            }
        }
        #expect(back == x)
        // Element (f, t) sits where the layout says; padding tokens are zero.
        let t = layout.width + 1, f = 3
        #expect(panels[((t / layout.width) * features + f) * layout.width + t % layout.width] == x[t * features + f])
        #expect(panels[(features + f) * layout.width + layout.width - 1] == 0)
        // Tokens 2 and 0 of a gathered pair, weighted, added back to their rows.
        let rows = [2, 0], weights: [Float] = [0.5, 2]
        var gathered = [Float](repeating: .nan, count: layout.width * features)
        var output = [Float](repeating: 1, count: tokens * features)
        x.withUnsafeBufferPointer { xp in
            rows.withUnsafeBufferPointer { r in
                gathered.withUnsafeMutableBufferPointer {
                    layout.gather(xp.baseAddress!, features: features, rows: r, into: $0.baseAddress!)
                }
                gathered.withUnsafeBufferPointer { g in
                    weights.withUnsafeBufferPointer { wp in
                        output.withUnsafeMutableBufferPointer {
                            layout.scatterAdd(g.baseAddress!, features: features, rows: r, weights: wp, into: $0.baseAddress!)
                        }
                    }
                }
            }
        }
        for c in 0..<features {
            #expect(output[2 * features + c] == 1 + 0.5 * x[2 * features + c])
            #expect(output[c] == 1 + 2 * x[c])
            #expect(output[features + c] == 1)
        }
    }
}

/// The variants this build has and their tiles. The tests above run every variant this CPU runs:
/// on x86-64 that includes the AVX-512 tiles compiled for AVX2, so their logic (8 x 32 tiles,
/// 16- and 8-lane narrow tiles, 32-token panels) is checked on machines without AVX-512.
struct MatrixKernelVariantTests {
    @Test func variantsAndTheirTiles() {
        #expect(KernelVariant.generic.isSupported)
        for variant in KernelVariant.allCases where variant.isSupported {
            let wide = [.avx512, .avx512VNNI, .avx512BF16, .avx512LogicOnAVX2].contains(variant)
            #expect(variant.rowTile == (wide ? 8 : 6) && variant.tokenPanel == (wide ? 32 : 16), "\(variant)")
            #expect(variant.maxDotTokens == 4)
        }
        #if arch(x86_64)
        if KernelVariant.avx2.kernels != nil {  // not the portable configuration
            #expect(KernelVariant.avx2.isSupported == CPUFeatures.runsAVX2)
            #expect(KernelVariant.avx512LogicOnAVX2.isSupported == CPUFeatures.runsAVX2)
        }
        #endif
        #if arch(x86_64)
        if KernelVariant.avx512VNNI.kernels != nil {
            #expect(KernelVariant.avx512VNNI.isSupported == CPUFeatures.runsAVX512VNNI)
            #expect(!CPUFeatures.runsAVX512VNNI || CPUFeatures.runsAVX512)
            #expect(KernelVariant.avx512BF16.isSupported == CPUFeatures.runsAVX512BF16)
            #expect(!CPUFeatures.runsAVX512BF16 || CPUFeatures.runsAVX512VNNI)
        }
        #endif
        let widest = [KernelVariant.avx512BF16, .avx512VNNI, .avx512, .avx2].first(where: \.isSupported) ?? .generic
        #expect(getenv("MOECKPT_KERNELS") != nil || KernelVariant.selected == widest)
    }
}
