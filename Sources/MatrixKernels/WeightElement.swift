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
