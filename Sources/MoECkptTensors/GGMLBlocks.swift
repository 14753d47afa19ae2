/// ggml's Q8_0 and Q4_0 blocks, bit for bit as `ggml-quants.c`'s reference code (and the `gguf`
/// package's `gguf.quants`) quantize and dequantize them: 32 weights a block, an F16 scale `d`
/// first.
/// - Q8_0 (34 bytes): d = max|x| / 127, q = roundf(x / d) (ties away from zero), x = q d.
/// - Q4_0 (18 bytes): d = m / -8 with m the value of largest magnitude (the first of equals),
///   q = min(15, trunc(x / d + 8.5)), byte j holding weight j (low nibble) and j + 16 (high);
///   x = (q - 8) d.
///
/// And the k-quants llama.cpp's Q4_K_M files hold, dequantized only (256 weights a block):
/// - Q4_K (144 bytes): d, dmin (F16), 12 bytes packing 8 six-bit scales and mins, 128 bytes of
///   nibbles; x = (d sc) q - (dmin m) per 32 weights.
/// - Q6_K (210 bytes): 128 bytes of low nibbles, 64 of high 2-bit pairs, 16 int8 scales, d (F16);
///   x = (d s) (q - 32) per 16 weights.
/// - Q5_K (176 bytes): Q4_K's d, dmin and scales, then 32 bytes of fifth bits (bit j of byte k is
///   weight 32 j + k's) and 128 bytes of nibbles as Q4_K's; x = (d sc) q - (dmin m) per 32 weights.
public enum GGMLBlocks {
    public static let q8_0Bytes = 34
    public static let q4_0Bytes = 18
    public static let q4_KBytes = 144
    public static let q6_KBytes = 210
    public static let q5_KBytes = 176

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

    /// Dequantizes `count` (a multiple of 256) weights from Q4_K blocks, as gguf.quants does.
    public static func dequantizeQ4_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 256) {
            let block = blocks + b * q4_KBytes
            let d = scale(block), dmin = scale(block + 2)
            for j in 0..<8 {
                let (sc, m) = subBlockScale(j, scales: block + 4)
                let (scaled, offset) = (d * Float(sc), dmin * Float(m))
                let (group, shift) = (j / 2, UInt8((j % 2) * 4))
                for k in 0..<32 {
                    let q = (block.load(fromByteOffset: 16 + group * 32 + k, as: UInt8.self) >> shift) & 0x0F
                    out[256 * b + 32 * j + k] = scaled * Float(q) - offset
                }
            }
        }
    }

    /// Dequantizes `count` (a multiple of 256) weights from Q5_K blocks, as gguf.quants does.
    public static func dequantizeQ5_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 256) {
            let block = blocks + b * q5_KBytes
            let d = scale(block), dmin = scale(block + 2)
            func byte(_ i: Int) -> UInt8 { block.load(fromByteOffset: i, as: UInt8.self) }
            for j in 0..<8 {
                let (sc, m) = subBlockScale(j, scales: block + 4)
                let (scaled, offset) = (d * Float(sc), dmin * Float(m))
                for k in 0..<32 {
                    let low = (byte(48 + (j / 2) * 32 + k) >> UInt8((j % 2) * 4)) & 0x0F
                    let high = (byte(16 + k) >> UInt8(j)) & 1
                    out[256 * b + 32 * j + k] = scaled * Float(low | high << 4) - offset
                }
            }
        }
    }

    /// Q4_K's and Q5_K's sub-block j (0-7): its 6-bit scale and min, from the 12 packed bytes
    /// (ggml's `get_scale_min_k4`).
    @inline(__always)
    static func subBlockScale(_ j: Int, scales: UnsafeRawPointer) -> (UInt8, UInt8) {
        func byte(_ i: Int) -> UInt8 { scales.load(fromByteOffset: i, as: UInt8.self) }
        return j < 4
            ? (byte(j) & 0x3F, byte(4 + j) & 0x3F)
            : ((byte(4 + j) & 0x0F) | ((byte(j - 4) >> 2) & 0x30), (byte(4 + j) >> 4) | ((byte(j) >> 2) & 0x30))
    }

    /// Dequantizes `count` (a multiple of 256) weights from Q6_K blocks, as gguf.quants does.
    public static func dequantizeQ6_K(_ blocks: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 256) {
            let block = blocks + b * q6_KBytes
            let d = scale(block + 208)
            for i in 0..<256 {
                let (c, k) = (i / 32, i % 32)
                let low = (block.load(fromByteOffset: (c / 4) * 64 + (c % 2) * 32 + k, as: UInt8.self) >> UInt8(((c % 4) / 2) * 4)) & 0x0F
                let high = (block.load(fromByteOffset: 128 + (c / 4) * 32 + k, as: UInt8.self) >> UInt8((c % 4) * 2)) & 0x03
                let q = Int(low | high << 4) - 32
                let s = Float(block.load(fromByteOffset: 192 + i / 16, as: Int8.self))
                out[256 * b + i] = (d * s) * Float(q)
            }
        }
    }

    /// A block's F16 scale.
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self))))
    }
}
