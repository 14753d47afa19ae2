/// MLX's microscaling quantization, bit for bit as `mlx.core.quantize` computes it on the CPU in
/// mlx 0.32.4 (its `fp_quantize`; docs/MLX.md). Per group (32 values for mxfp4 and mxfp8, 16 for
/// nvfp4), in F32, values first rounded to the weights' dtype `T`:
/// - mxfp4 / mxfp8: `v = T(max|w| / m)` (m = 6 or 448); the exponent `e = ceil(log2 v)` exactly
///   (0 when v is 0), stored as the byte e + 127; elements `x = T(w / T(2^e))`.
/// - nvfp4: the scale byte is `E4M3(T(max|w| / 6))`; elements `x = T(w / T(E4M3 value))`.
/// - An fp4 element is the E2M1 code nearest x, differences taken in F32, the first code of equals
///   (ties go to the smaller magnitude; -0 and small negatives to code 0); an fp8 element is x
///   rounded to E4M3 (to nearest, ties to even, saturating at ±448).
/// Codes fill a little-endian bit stream per row, as the affine ones do.
public enum MLXMicroscaled {
    public enum Mode: Sendable { case mxfp4, mxfp8, nvfp4 }

    static let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    /// E4M3's positive finite values, codes 0x00-0x7E in order.
    static let e4m3Positive: [Float] = (0..<0x7F).map { Float(bitPattern: Minifloat.f8E4M3.table[$0]) }

    public static func groupSize(_ mode: Mode) -> Int { mode == .nvfp4 ? 16 : 32 }
    public static func bits(_ mode: Mode) -> Int { mode == .mxfp8 ? 8 : 4 }

    /// x rounded to E4M3 ("fn"): to nearest, ties to the even code, saturating at ±448, as MLX's
    /// `ToFP8` (NaN and infinities to ±448 too).
    public static func e4m3(_ x: Float) -> UInt8 {
        let sign: UInt8 = x.sign == .minus ? 0x80 : 0
        let magnitude = x.magnitude
        guard magnitude < 448, !magnitude.isNaN else { return sign | 0x7E }
        // The first code at or above magnitude, then the nearer of it and the one below.
        var (low, high) = (0, e4m3Positive.count - 1)
        while low < high {
            let mid = (low + high) / 2
            if e4m3Positive[mid] < magnitude { low = mid + 1 } else { high = mid }
        }
        guard low > 0, e4m3Positive[low] != magnitude else { return sign | UInt8(low) }
        let (below, above) = (magnitude - e4m3Positive[low - 1], e4m3Positive[low] - magnitude)
        let code = below < above ? low - 1 : above < below ? low : (low % 2 == 0 ? low : low - 1)
        return sign | UInt8(code)
    }

    /// Quantizes a [rows, columns] matrix of values already in `dtype` (F32, F16 or BF16): `codes`
    /// gets rows x columns x bits / 32 words, `scales` rows x columns / groupSize bytes.
    public static func quantize(
        _ values: UnsafePointer<Float>, rows: Int, columns: Int, mode: Mode, dtype: DType, codes: UnsafeMutablePointer<UInt32>,
        scales: UnsafeMutablePointer<UInt8>
    ) {
        func rounded(_ x: Float) -> Float {
            switch dtype {
            case .bf16: Float(bitPattern: FloatBits.bf16ToF32(FloatBits.f32ToBF16(x.bitPattern)))
            case .f16: Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16(x.bitPattern)))
            default: x
            }
        }
        let (group, bits) = (groupSize(mode), bits(mode))
        let wordsPerRow = columns * bits / 32
        for r in 0..<rows {
            let words = codes + r * wordsPerRow
            for w in 0..<wordsPerRow { words[w] = 0 }
            for g in 0..<(columns / group) {
                let start = values + r * columns + g * group
                var largest: Float = 0
                for j in 0..<group { largest = Swift.max(largest, abs(start[j])) }
                let divisor: Float
                let scaleIndex = r * (columns / group) + g
                if mode == .nvfp4 {
                    let byte = e4m3(rounded(largest / 6))
                    scales[scaleIndex] = byte
                    divisor = rounded(Float(bitPattern: Minifloat.f8E4M3.table[Int(byte)]))
                } else {
                    let v = rounded(largest / (mode == .mxfp4 ? 6 : 448))
                    let exponent = v == 0 ? 0 : Int(v.exponent) + (v.significand == 1 ? 0 : 1)
                    scales[scaleIndex] = UInt8(truncatingIfNeeded: exponent + 127)
                    divisor = rounded(Float(sign: .plus, exponent: exponent, significand: 1))
                }
                for j in 0..<group {
                    let x = rounded(start[j] / divisor)
                    let code: UInt32
                    if mode == .mxfp8 {
                        code = UInt32(e4m3(x))
                    } else {
                        var best = 0
                        var nearest = Float.infinity
                        for (i, value) in e2m1.enumerated() where abs(x - value) < nearest {
                            (best, nearest) = (i, abs(x - value))
                        }
                        code = UInt32(best)
                    }
                    let bit = (g * group + j) * bits
                    words[bit / 32] |= code << UInt32(bit % 32)
                }
            }
        }
    }
}
