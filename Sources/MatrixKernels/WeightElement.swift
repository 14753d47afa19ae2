/// How a kernel reads one weight element as fp32. Weights are used in place, in the dtype they
/// are stored in (a file mapping of F32, BF16 or MXFP4 blocks), and widened in registers.
protocol WeightElement {
    /// Bytes of `elements` consecutive elements (a row, or an offset into one; for a block format
    /// a whole number of blocks).
    static func bytes(_ elements: Int) -> Int
    /// Element `index` of `base`, widened to fp32.
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float
    /// Elements `index..<index+16` of `base` (`index` a multiple of 16), widened to fp32.
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
}

/// The weight formats of `MatrixProducts`.
public enum WeightFormat: Sendable {
    case f32, bf16
    /// OCP MXFP4 in llama.cpp's `block_mxfp4` layout: per 32 elements, an E8M0 scale byte, then 16
    /// bytes whose low nibbles are elements 0-15 and high nibbles 16-31, each an E2M1 code.
    case mxfp4
    /// ggml's Q8_0: per 32 elements, an F16 scale d, then 32 int8 q; the element is q d.
    case q8_0
    /// ggml's Q4_0, Q4_K and Q6_K (`Q4_0Element`, `Q4_KElement`, `Q6_KElement`).
    case q4_0, q4_K, q6_K
}

enum F32Element: WeightElement {
    @inline(__always)
    static func bytes(_ elements: Int) -> Int { 4 * elements }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        base.loadUnaligned(fromByteOffset: 4 * index, as: Float.self)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: 4 * index, as: SIMD16<Float>.self)
    }
}

/// bfloat16 is the top half of an fp32: widening is a 16-bit shift, exact.
enum BF16Element: WeightElement {
    @inline(__always)
    static func bytes(_ elements: Int) -> Int { 2 * elements }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)) << 16)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let halves = base.loadUnaligned(fromByteOffset: 2 * index, as: SIMD16<UInt16>.self)
        // Lane by lane, which LLVM turns into one zero-extension; the generic
        // SIMD16<UInt32>(truncatingIfNeeded:) is sometimes left as a call per vector.
        var words = SIMD16<UInt32>()
        for lane in 0..<16 { words[lane] = UInt32(halves[lane]) }
        return unsafeBitCast(words &<< 16, to: SIMD16<Float>.self)
    }
}

/// MXFP4 blocks (`WeightFormat.mxfp4`): each E2M1 code widened by building its fp32 bits (sign,
/// exponent e + 126, the mantissa bit; 0.5 for the subnormal code), times the block's 2^(s - 127).
enum MXFP4Element: WeightElement {
    static let blockBytes = 17

    @inline(__always)
    static func bytes(_ elements: Int) -> Int { elements / 32 * blockBytes }

    @inline(__always)
    static func scale(_ block: UnsafeRawPointer) -> Float {
        Float(sign: .plus, exponent: Int(block.load(as: UInt8.self)) - 127, significand: 1)
    }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        let block = base + (index >> 5) * blockBytes
        let byte = block.load(fromByteOffset: 1 + (index & 15), as: UInt8.self)
        let code = index & 16 == 0 ? byte & 0xF : byte >> 4
        let magnitude = code & 7
        let value: Float =
            magnitude < 2
            ? Float(magnitude) * 0.5 : Float(sign: .plus, exponent: Int(magnitude >> 1) - 1, significand: 1 + Float(magnitude & 1) * 0.5)
        return (code & 8 == 0 ? value : -value) * scale(block)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let block = base + (index >> 5) * blockBytes
        let bytes = block.loadUnaligned(fromByteOffset: 1, as: SIMD16<UInt8>.self)
        let nibbles = index & 16 == 0 ? bytes & 0xF : bytes &>> 4
        // Lane by lane, and the subnormal codes selected with integer masks, not SIMDMask: the
        // generic conversion and the comparison were compiled into calls and per-lane stack
        // loops (11 times slower, measured).
        var codes = SIMD16<UInt32>()
        for lane in 0..<16 { codes[lane] = UInt32(nibbles[lane]) }
        let exponent = (codes &>> 1) & 3, mantissa = codes & 1
        let normal = ((exponent &+ 126) &<< 23) | (mantissa &<< 22)
        let subnormal = ((exponent | (exponent &>> 1)) & 1) &- 1  // all ones where the exponent is 0
        let bits = (normal & ~subnormal) | ((mantissa &* 0x3F00_0000) & subnormal) | ((codes & 8) &<< 28)
        return unsafeBitCast(bits, to: SIMD16<Float>.self) * scale(block)
    }
}

/// Q8_0 blocks (`WeightFormat.q8_0`): each int8 widened exactly through its bits (2^23 + (q + 128)
/// as an fp32, minus 2^23 + 128: integer operations and one subtraction, no conversion call),
/// times the block's scale. q d is exact in fp32 (8 by 11 significant bits).
enum Q8_0Element: WeightElement {
    static let blockBytes = 34

    @inline(__always)
    static func bytes(_ elements: Int) -> Int { elements / 32 * blockBytes }

    /// The block's F16 scale, widened exactly.
    @inline(__always)
    static func scale(_ block: UnsafeRawPointer) -> Float {
        let h = UInt32(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
        let sign = (h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        if exponent != 0 { return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13) }
        // Subnormal: mantissa 2^-24, exactly.
        return Float(mantissa) * Float(bitPattern: 0x3380_0000) * (sign == 0 ? 1 : -1)
    }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        let block = base + (index >> 5) * blockBytes
        return Float(block.load(fromByteOffset: 2 + (index & 31), as: Int8.self)) * scale(block)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let block = base + (index >> 5) * blockBytes
        let bytes = block.loadUnaligned(fromByteOffset: 2 + (index & 16), as: SIMD16<UInt8>.self) ^ 0x80
        var words = SIMD16<UInt32>()
        for lane in 0..<16 { words[lane] = UInt32(bytes[lane]) }
        let values = unsafeBitCast(words | 0x4B00_0000, to: SIMD16<Float>.self) - 8_388_736
        return values * scale(block)
    }
}

/// A nibble or 6-bit code (0-63) widened to fp32 exactly, less `offset`: 2^23 + code as fp32 bits,
/// minus 2^23 + offset (integer operations and one subtraction, no conversion call).
@inline(__always)
func widenedCodes(_ codes: SIMD16<UInt8>, minus offset: Float) -> SIMD16<Float> {
    var words = SIMD16<UInt32>()
    for lane in 0..<16 { words[lane] = UInt32(codes[lane]) }
    return unsafeBitCast(words | 0x4B00_0000, to: SIMD16<Float>.self) - (8_388_608 + offset)
}

/// Q4_0 blocks (`WeightFormat.q4_0`): per 32 elements an F16 scale d, then 16 bytes whose low
/// nibbles are elements 0-15 and high nibbles 16-31; the element is (q - 8) d, as ggml computes it.
enum Q4_0Element: WeightElement {
    static let blockBytes = 18

    @inline(__always)
    static func bytes(_ elements: Int) -> Int { elements / 32 * blockBytes }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        let block = base + (index >> 5) * blockBytes
        let byte = block.load(fromByteOffset: 2 + (index & 15), as: UInt8.self)
        let code = index & 16 == 0 ? byte & 0xF : byte >> 4
        return Float(Int(code) - 8) * Q8_0Element.scale(block)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let block = base + (index >> 5) * blockBytes
        let bytes = block.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
        return widenedCodes(index & 16 == 0 ? bytes & 0xF : bytes &>> 4, minus: 8) * Q8_0Element.scale(block)
    }
}

/// Q4_K super-blocks (`WeightFormat.q4_K`), 144 bytes per 256 elements: F16 d and dmin, 12 bytes
/// of 6-bit scales and mins for 8 sub-blocks of 32, then 128 bytes of nibbles (per 64 elements,
/// 32 bytes: low nibbles the first sub-block, high the second). The element is (d sc) q - (dmin m),
/// as ggml's dequantization computes it.
enum Q4_KElement: WeightElement {
    static let blockBytes = 144

    @inline(__always)
    static func bytes(_ elements: Int) -> Int { elements / 256 * blockBytes }

    /// Sub-block `j`'s scale d sc and offset dmin m (ggml's `get_scale_min_k4`).
    @inline(__always)
    static func scaleAndOffset(_ block: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
        func byte(_ i: Int) -> UInt8 { block.load(fromByteOffset: 4 + i, as: UInt8.self) }
        let (sc, m): (UInt8, UInt8) =
            j < 4
            ? (byte(j) & 0x3F, byte(4 + j) & 0x3F)
            : ((byte(4 + j) & 0x0F) | ((byte(j - 4) >> 2) & 0x30), (byte(4 + j) >> 4) | ((byte(j) >> 2) & 0x30))
        return (Q8_0Element.scale(block) * Float(sc), Q8_0Element.scale(block + 2) * Float(m))
    }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        let block = base + (index >> 8) * blockBytes
        let j = (index & 255) >> 5
        let byte = block.load(fromByteOffset: 16 + (j >> 1) * 32 + (index & 31), as: UInt8.self)
        let (scale, offset) = scaleAndOffset(block, j)
        return scale * Float((byte >> UInt8((j & 1) * 4)) & 0xF) - offset
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let block = base + (index >> 8) * blockBytes
        let j = (index & 255) >> 5
        let bytes = block.loadUnaligned(fromByteOffset: 16 + (j >> 1) * 32 + (index & 16), as: SIMD16<UInt8>.self)
        let (scale, offset) = scaleAndOffset(block, j)
        return widenedCodes(j & 1 == 0 ? bytes & 0xF : bytes &>> 4, minus: 0) * scale - offset
    }
}

/// Q6_K super-blocks (`WeightFormat.q6_K`), 210 bytes per 256 elements: 128 bytes of low nibbles,
/// 64 of high bit pairs, 16 int8 scales (one per 16 elements), then F16 d. The element is
/// (d s) (q - 32), as ggml's dequantization computes it.
enum Q6_KElement: WeightElement {
    static let blockBytes = 210

    @inline(__always)
    static func bytes(_ elements: Int) -> Int { elements / 256 * blockBytes }

    /// Where element `i` of a super-block (0-255) keeps its low nibble and high pair, and their shifts.
    @inline(__always)
    static func places(_ i: Int) -> (low: Int, lowShift: UInt8, high: Int, highShift: UInt8) {
        let c = i >> 5
        return ((c >> 2) * 64 + (c & 1) * 32 + (i & 31), UInt8(((c & 3) >> 1) * 4), 128 + (c >> 2) * 32 + (i & 31), UInt8((c & 3) * 2))
    }

    @inline(__always)
    static func scale(_ block: UnsafeRawPointer, _ i: Int) -> Float {
        Q8_0Element.scale(block + 208) * Float(block.load(fromByteOffset: 192 + (i >> 4), as: Int8.self))
    }

    @inline(__always)
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        let block = base + (index >> 8) * blockBytes, i = index & 255
        let at = places(i)
        let low = (block.load(fromByteOffset: at.low, as: UInt8.self) >> at.lowShift) & 0xF
        let high = (block.load(fromByteOffset: at.high, as: UInt8.self) >> at.highShift) & 3
        return scale(block, i) * Float(Int(low | high << 4) - 32)
    }

    @inline(__always)
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let block = base + (index >> 8) * blockBytes, i = index & 255
        let at = places(i)
        let low = (block.loadUnaligned(fromByteOffset: at.low, as: SIMD16<UInt8>.self) &>> at.lowShift) & 0xF
        let high = (block.loadUnaligned(fromByteOffset: at.high, as: SIMD16<UInt8>.self) &>> at.highShift) & 3
        return widenedCodes(low | high &<< 4, minus: 32) * scale(block, i)
    }
}
