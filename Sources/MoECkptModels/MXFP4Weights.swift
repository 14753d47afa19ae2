import MoECkptFormats
import MoECkptTensors

/// Weights in MXFP4 as gpt-oss ships them: `X_blocks` U8 [E, rows, columns / 32, 16] (two FP4 E2M1
/// codes a byte, the low nibble first) and `X_scales` U8 [E, rows, columns / 32] (E8M0: 2^(s - 127)),
/// the matrix [rows, columns] of each expert being the transpose of the parameter `X` [E, columns,
/// rows] (transformers' `_convert_moe_packed_tensors`).
public enum MXFP4Weights {
    /// The stored tensors with each `_blocks`/`_scales` pair replaced by the F32 parameter, computed
    /// when first read (a conversion then holds one at a time; a forward pass reads the blocks).
    public static func dequantize(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var out: [NamedTensor] = []
        var problems: [String] = []
        for tensor in stored where !tensor.name.hasSuffix("_scales") {
            guard tensor.name.hasSuffix("_blocks") else {
                out.append(tensor)
                continue
            }
            guard let pair = Pair(tensor, byName) else {
                problems.append("\(tensor.name) has no matching U8 \(tensor.name.dropLast("_blocks".count))_scales [experts, rows, groups]")
                continue
            }
            let (experts, rows, columns) = (pair.experts, pair.rows, pair.columns)
            guard let bytes = (Checked(experts) * rows * columns * 4).value else {
                problems.append("\(tensor.name): its size overflows")
                continue
            }
            let storage = DerivedStorage(name: pair.name, byteCount: bytes, sources: [pair.blocks.rope, pair.scales.rope]) {
                sources, out in
                let (codes, exponents) = (sources[0], sources[1])
                for e in 0..<experts {
                    for r in 0..<rows {
                        for column in 0..<columns {
                            let group = (e * rows + r) * (columns / 32) + column / 32
                            let byte = codes[group * 16 + (column % 32) / 2]
                            let code = column % 2 == 0 ? byte & 0xF : byte >> 4
                            let value = MXFP4Blocks.values[Int(code)] * MXFP4Blocks.scale(exponents[group])
                            // The parameter is the transpose: [e, column, r].
                            out.storeBytes(of: value, toByteOffset: ((e * columns + column) * rows + r) * 4, as: Float.self)
                        }
                    }
                }
            }
            out.append(NamedTensor(name: pair.name, dtype: .f32, shape: [experts, columns, rows], rope: storage.rope))
        }
        return (out, problems)
    }

    /// The rows `first, first + step, ...` of each expert's [rows, columns] matrix as the kernels'
    /// MXFP4 blocks (`MXFP4Blocks`), re-packed when first read; nil when the pair is not one.
    public static func packed(
        _ name: String, in byName: [String: NamedTensor], firstRow: Int = 0, rowStep: Int = 1
    ) -> QuantizedWeight? {
        guard let blocks = byName[name + "_blocks"], let pair = Pair(blocks, byName), pair.rows % rowStep == 0 else { return nil }
        let (experts, rows, groups) = (pair.experts, pair.rows / rowStep, pair.columns / 32)
        guard let bytes = (Checked(experts) * rows * groups * MXFP4Blocks.blockBytes).value else { return nil }
        let storage = DerivedStorage(name: name, byteCount: bytes, sources: [pair.blocks.rope, pair.scales.rope]) { sources, out in
            let (codes, exponents) = (sources[0], sources[1])
            for e in 0..<experts {
                for r in 0..<rows {
                    let source = e * pair.rows + firstRow + r * rowStep
                    for g in 0..<groups {
                        MXFP4Blocks.block(
                            fromPairs: codes.baseAddress! + (source * groups + g) * 16, scale: exponents[source * groups + g],
                            into: out.baseAddress! + ((e * rows + r) * groups + g) * MXFP4Blocks.blockBytes)
                    }
                }
            }
        }
        return QuantizedWeight(format: .mxfp4, shape: [experts, rows, pair.columns], rope: storage.rope)
    }

    /// A `_blocks` tensor and its `_scales`, checked against each other.
    struct Pair {
        let name: String
        let blocks, scales: NamedTensor
        let experts, rows, columns: Int

        init?(_ blocks: NamedTensor, _ byName: [String: NamedTensor]) {
            name = String(blocks.name.dropLast("_blocks".count))
            guard blocks.name.hasSuffix("_blocks"), let scales = byName[name + "_scales"], blocks.dtype == .u8, scales.dtype == .u8,
                blocks.shape.count == 4, blocks.shape[3] == 16, scales.shape == Array(blocks.shape.prefix(3))
            else { return nil }
            (self.blocks, self.scales) = (blocks, scales)
            (experts, rows, columns) = (blocks.shape[0], blocks.shape[1], blocks.shape[2] * 32)
        }
    }
}

/// A canonical weight also held in a block-quantized form the kernels read as it is (gpt-oss's
/// MXFP4 experts, [experts, rows, columns] in `MXFP4Blocks`), so a forward pass need not widen it.
public struct QuantizedWeight: Sendable {
    public enum Format: Sendable {
        case mxfp4, q8_0, q4_0, q4_K, q5_K, q6_K

        /// The bits each weight's quant has (block scales left out).
        public var bitsPerWeight: Int {
            switch self {
            case .q8_0: 8
            case .q6_K: 6
            case .q5_K: 5
            case .mxfp4, .q4_0, .q4_K: 4
            }
        }
    }

    public let format: Format
    public let shape: [Int]
    public let rope: ByteRope

    public init(format: Format, shape: [Int], rope: ByteRope) {
        self.format = format
        self.shape = shape
        self.rope = rope
    }
}
