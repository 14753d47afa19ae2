/// Exact conversions between float encodings, on bit patterns.
///
/// Widening (F16, BF16, the F8/F6/F4 minifloats to F32) is exact and keeps NaN payloads as torch does. Narrowing
/// F32 to F16 or BF16 rounds to nearest, ties to even, overflows to infinity, produces subnormals,
/// and maps NaN to a quiet NaN of the same sign that keeps the payload's top bits.
public enum FloatBits {
    @inline(__always)
    public static func f16ToF32(_ h: UInt16) -> UInt32 {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x03FF)
        if exponent == 0x1F { return sign | 0x7F80_0000 | (mantissa << 13) }
        if exponent != 0 { return sign | ((exponent + 112) << 23) | (mantissa << 13) }
        if mantissa == 0 { return sign }
        // Subnormal: mantissa * 2^-24, which is a normal F32; Float(mantissa) is exact.
        return sign | (Float(mantissa).bitPattern - (24 << 23))
    }

    @inline(__always)
    public static func bf16ToF32(_ b: UInt16) -> UInt32 { UInt32(b) << 16 }

    @inline(__always)
    public static func f32ToBF16(_ x: UInt32) -> UInt16 {
        if x & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
        let roundingBias = 0x7FFF + ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: (x &+ roundingBias) >> 16)
    }

    @inline(__always)
    public static func f32ToF16(_ x: UInt32) -> UInt16 {
        let sign = UInt16(truncatingIfNeeded: (x & 0x8000_0000) >> 16)
        let exponent = x & 0x7F80_0000
        let mantissa = x & 0x007F_FFFF
        if exponent == 0x7F80_0000 {
            if mantissa == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let halfExponent = Int(exponent >> 23) - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            let shift = 14 - halfExponent
            if shift > 24 { return sign }
            let full = mantissa | 0x0080_0000
            var halfMantissa = full >> UInt32(shift)
            let roundBit: UInt32 = 1 << UInt32(shift - 1)
            if full & roundBit != 0 && full & (3 &* roundBit &- 1) != 0 { halfMantissa += 1 }
            return sign | UInt16(truncatingIfNeeded: halfMantissa)
        }
        let bits = sign | UInt16(halfExponent << 10) | UInt16(truncatingIfNeeded: mantissa >> 13)
        let roundBit: UInt32 = 0x1000
        // Adding one may carry into the exponent: that is the correct rounding (up to infinity too).
        if mantissa & roundBit != 0 && mantissa & (3 &* roundBit &- 1) != 0 { return bits &+ 1 }
        return bits
    }
}

/// A small float encoding (8 bits or fewer) described by its fields, decoded through a table.
public struct Minifloat: Sendable {
    /// How an encoding spends its special values.
    public enum Specials: Sendable {
        /// IEEE-like: the all-ones exponent holds infinities and NaNs (F8_E5M2).
        case ieee
        /// No infinities; only all-ones exponent and mantissa is NaN (F8_E4M3 "fn").
        case nanAllOnes
        /// No infinities or negative zero; the pattern 0x80 is NaN ("fnuz").
        case nanNegativeZero
        /// No special values at all (F4, F6).
        case none
    }

    public let exponentBits: Int
    public let mantissaBits: Int
    public let bias: Int
    public let hasSign: Bool
    public let specials: Specials
    /// Every bit pattern's value as F32 bits.
    public let table: [UInt32]

    init(exponentBits: Int, mantissaBits: Int, bias: Int, hasSign: Bool = true, specials: Specials) {
        self.exponentBits = exponentBits
        self.mantissaBits = mantissaBits
        self.bias = bias
        self.hasSign = hasSign
        self.specials = specials
        let width = exponentBits + mantissaBits + (hasSign ? 1 : 0)
        table = (0..<(1 << width)).map {
            Minifloat.decode(UInt32($0), exponentBits, mantissaBits, bias, hasSign, specials)
        }
    }

    private static func decode(
        _ pattern: UInt32, _ eBits: Int, _ mBits: Int, _ bias: Int,
        _ hasSign: Bool, _ specials: Specials
    ) -> UInt32 {
        let width = eBits + mBits + (hasSign ? 1 : 0)
        let negative = hasSign && (pattern >> UInt32(width - 1)) & 1 == 1
        let exponent = Int((pattern >> UInt32(mBits)) & ((1 << UInt32(eBits)) - 1))
        let mantissa = Int(pattern & ((1 << UInt32(mBits)) - 1))
        let maxExponent = (1 << eBits) - 1
        // NaNs as torch widens them (torch 2.13, fixtures/casts): sign and payload under a quiet bit
        // where the encoding has a payload; 0x7F800001 where its one NaN has none.
        let payloadNaN: UInt32 = (negative ? 0x8000_0000 : 0) | 0x7FC0_0000 | UInt32(mantissa) << UInt32(23 - mBits)
        let bareNaN: UInt32 = 0x7F80_0001
        switch specials {
        case .ieee where exponent == maxExponent:
            return mantissa == 0 ? (negative ? 0xFF80_0000 : 0x7F80_0000) : payloadNaN
        case .nanAllOnes where exponent == maxExponent && mantissa == (1 << mBits) - 1:
            return payloadNaN
        case .nanNegativeZero where negative && exponent == 0 && mantissa == 0:
            return bareNaN
        default:
            break
        }
        // Unsigned exponent-only encodings (E8M0) reserve all-ones for NaN.
        if !hasSign && mBits == 0 && exponent == maxExponent { return bareNaN }
        let magnitude: Double
        if exponent == 0 && mBits > 0 {
            magnitude = Double(mantissa) * pow2(1 - bias - mBits)
        } else {
            magnitude = Double((1 << mBits) + mantissa) * pow2(exponent - bias - mBits)
        }
        // Every value of these encodings is exactly representable as an F32 (subnormal at worst).
        return Float(negative ? -magnitude : magnitude).bitPattern
    }

    private static func pow2(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }

    public static let f8E4M3 = Minifloat(exponentBits: 4, mantissaBits: 3, bias: 7, specials: .nanAllOnes)
    public static let f8E5M2 = Minifloat(exponentBits: 5, mantissaBits: 2, bias: 15, specials: .ieee)
    public static let f8E8M0 = Minifloat(exponentBits: 8, mantissaBits: 0, bias: 127, hasSign: false, specials: .none)
    public static let f8E4M3FNUZ = Minifloat(exponentBits: 4, mantissaBits: 3, bias: 8, specials: .nanNegativeZero)
    public static let f8E5M2FNUZ = Minifloat(exponentBits: 5, mantissaBits: 2, bias: 16, specials: .nanNegativeZero)
    public static let f4E2M1 = Minifloat(exponentBits: 2, mantissaBits: 1, bias: 1, specials: .none)
    public static let f6E2M3 = Minifloat(exponentBits: 2, mantissaBits: 3, bias: 1, specials: .none)
    public static let f6E3M2 = Minifloat(exponentBits: 3, mantissaBits: 2, bias: 3, specials: .none)

    /// The encoding behind a minifloat dtype, or nil for other dtypes.
    public static func of(_ dtype: DType) -> Minifloat? {
        switch dtype {
        case .f8E4M3: f8E4M3
        case .f8E5M2: f8E5M2
        case .f8E8M0: f8E8M0
        case .f8E4M3FNUZ: f8E4M3FNUZ
        case .f8E5M2FNUZ: f8E5M2FNUZ
        case .f4: f4E2M1
        case .f6E2M3: f6E2M3
        case .f6E3M2: f6E3M2
        default: nil
        }
    }
}
