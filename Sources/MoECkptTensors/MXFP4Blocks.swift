/// MXFP4 (OCP microscaling FP4) in the layout the matrix kernels read (`MatrixWeightType.mxfp4`,
/// llama.cpp's `block_mxfp4`): per 32 weights of a row, one E8M0 scale byte (2^(s - 127)) and 16
/// bytes of E2M1 codes, byte j holding weight j in its low nibble and weight j + 16 in its high.
public enum MXFP4Blocks {
    public static let blockBytes = 17
    /// The E2M1 values of the 16 codes (sign bit 8).
    public static let values: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// 2^(s - 127) (E8M0; 255, NaN in the standard, overflows to infinity as in transformers).
    public static func scale(_ exponent: UInt8) -> Float {
        exponent == 0 ? Float(bitPattern: 0x0040_0000) : exponent == 255 ? .infinity : Float(bitPattern: UInt32(exponent) << 23)
    }

    /// One block from gpt-oss's stored form: 16 bytes holding weights 2b (low nibble) and 2b + 1
    /// (high nibble) of the group, and its scale.
    @inline(__always)
    public static func block(
        fromPairs codes: UnsafeRawPointer, scale: UInt8, into out: UnsafeMutableRawPointer
    ) {
        out.storeBytes(of: scale, as: UInt8.self)
        func code(_ k: Int) -> UInt8 {
            let byte = codes.load(fromByteOffset: k >> 1, as: UInt8.self)
            return k & 1 == 0 ? byte & 0xF : byte >> 4
        }
        for j in 0..<16 { out.storeBytes(of: code(j) | code(j + 16) << 4, toByteOffset: 1 + j, as: UInt8.self) }
    }

    /// Weight `index` of a row of blocks.
    public static func value(_ row: UnsafeRawPointer, _ index: Int) -> Float {
        let block = row + (index / 32) * blockBytes
        let byte = block.load(fromByteOffset: 1 + index % 16, as: UInt8.self)
        let code = index % 32 < 16 ? byte & 0xF : byte >> 4
        return values[Int(code)] * scale(block.load(as: UInt8.self))
    }

    /// Rows of `columns` (a multiple of 32) weights quantized block by block: the scale makes the
    /// block's largest magnitude at most 6, each weight rounds to the nearest code (for synthetic
    /// models and tests; the rounding is not any tool's).
    public static func quantize(_ weights: [Float], columns: Int) -> [UInt8] {
        precondition(columns % 32 == 0 && weights.count % columns == 0, "rows of whole blocks")
        var out = [UInt8](repeating: 0, count: weights.count / 32 * blockBytes)
        for b in 0..<(weights.count / 32) {
            let group = weights[(b * 32)..<((b + 1) * 32)]
            let largest = group.map(abs).max() ?? 0
            let exponent = largest > 0 ? max(-127, min(127, Int((largest / 6).exponent) + ((largest / 6).significand > 1 ? 1 : 0))) : -127
            let scale = Float(sign: .plus, exponent: exponent, significand: 1)
            out[b * blockBytes] = UInt8(exponent + 127)
            for (k, weight) in group.enumerated() {
                let target = weight / scale
                let code = (0..<16).min { abs(values[$0] - target) < abs(values[$1] - target) } ?? 0
                let j = 1 + k % 16
                out[b * blockBytes + j] |= UInt8(code) << (k < 16 ? 0 : 4)
            }
        }
        return out
    }
}
