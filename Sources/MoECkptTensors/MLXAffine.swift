/// MLX's affine quantization, bit for bit as `mlx.core.quantize` computes it on the CPU (mlx
/// 0.32.4's `quantize<T, U>` in mlx/backend/cpu/quantized.cpp; docs/MLX.md): per group of
/// `groupSize` consecutive values of a row, in F32 with each operation rounded and no fused
/// multiply-add,
/// - min and max, scanned in order; `scale = max((max - min) / (2^bits - 1), 1e-7)`, negated
///   unless |min| > |max|;
/// - the extreme of larger magnitude `edge` (max on ties): `q0 = rint(edge / scale)`; when q0 is
///   not 0, `scale = edge / q0` and `bias = edge` (that extreme is exact), else `bias = 0`;
/// - `q = clamp(rint((w - bias) / scale), 0, 2^bits - 1)` with the F32 scale and bias (the stored
///   ones are rounded to the weights' dtype afterwards).
/// Codes go into a little-endian bit stream per row, code i at bits [i bits, (i + 1) bits), stored
/// as U32 words. 1 bit (mlx 0.32.4 only): `scale = max(max - min, 1e-7)`, `bias = min`.
public enum MLXAffine {
    /// Scale and bias of one group.
    public static func parameters(_ group: UnsafeBufferPointer<Float>, bits: Int) -> (scale: Float, bias: Float) {
        var (low, high) = (Float.infinity, -Float.infinity)
        // As std::max(a, b) and std::min(a, b): a unless b is strictly beyond (the first of equals
        // stays, which tells +0 from -0).
        func largest(_ a: Float, _ b: Float) -> Float { a < b ? b : a }
        for w in group {
            high = largest(high, w)
            low = w < low ? w : low
        }
        let eps: Float = 1e-7
        if bits == 1 { return (largest(high - low, eps), low) }
        let bins = Float((1 << bits) - 1)
        let lowIsEdge = abs(low) > abs(high)
        var scale = largest((high - low) / bins, eps)
        scale = lowIsEdge ? scale : -scale
        let edge = lowIsEdge ? low : high
        let q0 = (edge / scale).rounded(.toNearestOrEven)
        guard q0 != 0 else { return (scale, 0) }
        return (edge / q0, edge)
    }

    /// Quantizes a [rows, columns] matrix: `codes` gets rows x columns x bits / 32 words, `scales`
    /// and `biases` rows x columns / groupSize values each (F32, to be rounded to the dtype).
    public static func quantize(
        _ values: UnsafePointer<Float>, rows: Int, columns: Int, bits: Int, groupSize: Int, codes: UnsafeMutablePointer<UInt32>,
        scales: UnsafeMutablePointer<Float>, biases: UnsafeMutablePointer<Float>
    ) {
        let bins = Float((1 << bits) - 1)
        let wordsPerRow = columns * bits / 32
        let groupsPerRow = columns / groupSize
        for r in 0..<rows {
            let row = values + r * columns
            let words = codes + r * wordsPerRow
            for w in 0..<wordsPerRow { words[w] = 0 }
            for g in 0..<groupsPerRow {
                let group = UnsafeBufferPointer(start: row + g * groupSize, count: groupSize)
                let (scale, bias) = parameters(group, bits: bits)
                scales[r * groupsPerRow + g] = scale
                biases[r * groupsPerRow + g] = bias
                for (j, w) in group.enumerated() {
                    let q = UInt64(Swift.min(Swift.max(((w - bias) / scale).rounded(.toNearestOrEven), 0), bins))
                    let bit = (g * groupSize + j) * bits
                    let shifted = q << UInt64(bit % 32)
                    words[bit / 32] |= UInt32(truncatingIfNeeded: shifted)
                    if bit % 32 + bits > 32 { words[bit / 32 + 1] |= UInt32(truncatingIfNeeded: shifted >> 32) }
                }
            }
        }
    }
}
