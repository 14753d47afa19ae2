/// How a kernel reads one weight element as fp32. Weights are used in place, in the dtype they
/// are stored in (a file mapping of F32 or BF16), and widened in registers.
protocol WeightElement {
    static var byteWidth: Int { get }
    /// Element `index` of `base`, widened to fp32.
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float
    /// Elements `index..<index+16` of `base`, widened to fp32.
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
}

enum F32Element: WeightElement {
    static var byteWidth: Int { 4 }

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
    static var byteWidth: Int { 2 }

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
