import MoECkptFormats
import MoECkptTensors

/// Weights in MXFP4 as gpt-oss ships them: `X_blocks` U8 [E, rows, columns / 32, 16] (two FP4 E2M1
/// codes a byte, the low nibble first) and `X_scales` U8 [E, rows, columns / 32] (E8M0: 2^(s - 127)),
/// the matrix [rows, columns] of each expert being the transpose of the parameter `X` [E, columns,
/// rows] (transformers' `_convert_moe_packed_tensors`).
public enum MXFP4Weights {
    static let values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// The stored tensors with each `_blocks`/`_scales` pair replaced by the F32 parameter.
    public static func dequantize(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var out: [NamedTensor] = []
        var problems: [String] = []
        for tensor in stored where !tensor.name.hasSuffix("_scales") {
            guard tensor.name.hasSuffix("_blocks") else {
                out.append(tensor)
                continue
            }
            let name = String(tensor.name.dropLast("_blocks".count))
            guard let scales = byName[name + "_scales"], tensor.dtype == .u8, scales.dtype == .u8, tensor.shape.count == 4,
                tensor.shape[3] == 16, scales.shape == Array(tensor.shape.prefix(3))
            else {
                problems.append("\(tensor.name) has no matching U8 \(name)_scales [experts, rows, groups]")
                continue
            }
            let (experts, rows, groups) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
            let columns = groups * 32
            guard MemoryBudget.fits(experts * rows * columns * 4 * 2) else {
                problems.append("\(tensor.name): dequantizing it would need more memory than this process may use")
                continue
            }
            do {
                try tensor.rope.load()
                try scales.rope.load()
            } catch {
                problems.append(error.description)
                continue
            }
            let (codes, exponents) = (tensor.rope.copyBytes(), scales.rope.copyBytes())
            var values = [Float](repeating: 0, count: experts * rows * columns)
            for e in 0..<experts {
                for r in 0..<rows {
                    for g in 0..<groups {
                        let scale = Float(sign: .plus, exponent: Int(exponents[(e * rows + r) * groups + g]) - 127, significand: 1)
                        for b in 0..<16 {
                            let byte = codes[((e * rows + r) * groups + g) * 16 + b]
                            let column = g * 32 + 2 * b
                            // The parameter is the transpose: [e, column, r].
                            values[(e * columns + column) * rows + r] = Self.values[Int(byte & 0xF)] * scale
                            values[(e * columns + column + 1) * rows + r] = Self.values[Int(byte >> 4)] * scale
                        }
                    }
                }
            }
            let storage = values.withUnsafeBytes { FileMapping(copying: $0, path: name) }
            out.append(
                NamedTensor(
                    name: name, dtype: .f32, shape: [experts, columns, rows],
                    rope: ByteRope([BytePiece(storage: storage, offset: 0, count: values.count * 4)])))
        }
        return (out, problems)
    }
}
