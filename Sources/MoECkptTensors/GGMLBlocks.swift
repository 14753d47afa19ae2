/// ggml's Q8_0 and Q4_0 blocks, bit for bit as `ggml-quants.c`'s reference code (and the `gguf`
/// package's `gguf.quants`) quantize and dequantize them: 32 weights a block, an F16 scale `d`
/// first.
/// - Q8_0 (34 bytes): d = max|x| / 127, q = roundf(x / d) (ties away from zero), x = q d.
/// - Q4_0 (18 bytes): d = m / -8 with m the value of largest magnitude (the first of equals),
///   q = min(15, trunc(x / d + 8.5)), byte j holding weight j (low nibble) and j + 16 (high);
///   x = (q - 8) d.
public enum GGMLBlocks {
    public static let q8_0Bytes = 34
    public static let q4_0Bytes = 18

    /// Quantizes `count` (a multiple of 32) values into Q8_0 blocks.
    public static func quantizeQ8_0(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / 32) {
            let values = x + 32 * b, block = out + b * q8_0Bytes
            var largest: Float = 0
            for j in 0..<32 { largest = max(largest, abs(values[j])) }
            let d = largest / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            block.storeBytes(of: FloatBits.f32ToF16(d.bitPattern).littleEndian, as: UInt16.self)
            for j in 0..<32 {
                let q = Int8((values[j] * inverse).rounded(.toNearestOrAwayFromZero))
                block.storeBytes(of: q, toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }

    public static func dequantizeQ8_0(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let block = blocks + b * q8_0Bytes
            let d = scale(block)
            for j in 0..<32 { out[32 * b + j] = Float(block.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        }
    }

    /// Quantizes `count` (a multiple of 32) values into Q4_0 blocks.
    public static func quantizeQ4_0(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        for b in 0..<(count / 32) {
            let values = x + 32 * b, block = out + b * q4_0Bytes
            var largest: Float = 0
            for j in 0..<32 where abs(values[j]) > abs(largest) { largest = values[j] }
            let d = largest / -8
            let inverse: Float = d != 0 ? 1 / d : 0
            block.storeBytes(of: FloatBits.f32ToF16(d.bitPattern).littleEndian, as: UInt16.self)
            func code(_ j: Int) -> UInt8 { UInt8(min(15, (values[j] * inverse + 8.5).rounded(.towardZero))) }
            for j in 0..<16 { block.storeBytes(of: code(j) | code(j + 16) << 4, toByteOffset: 2 + j, as: UInt8.self) }
        }
    }

    public static func dequantizeQ4_0(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let block = blocks + b * q4_0Bytes
            let d = scale(block)
            for j in 0..<16 {
                let byte = block.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[32 * b + j] = Float(Int(byte & 0xF) - 8) * d
                out[32 * b + j + 16] = Float(Int(byte >> 4) - 8) * d
            }
        }
    }

    /// A block's F16 scale.
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self))))
    }
}
