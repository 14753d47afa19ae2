import Testing

@testable import MoECkptTensors

/// The bulk cast kernels against the scalar conversions they are built from, on unaligned input.
struct CastKernelTests {
    /// Deterministic bit patterns, including NaNs, infinities and subnormals.
    static func patterns(_ count: Int) -> [UInt32] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt32(truncatingIfNeeded: state >> 32)
        }
    }

    /// Runs `Cast.cast` on `source` placed one byte past an aligned address.
    static func castUnaligned(_ source: [UInt8], from: DType, to: DType, count: Int) throws -> [UInt8] {
        var shifted = [UInt8](repeating: 0, count: source.count + 1)
        shifted.replaceSubrange(1..., with: source)
        var out = [UInt8](repeating: 0, count: count * to.byteWidth!)
        try shifted.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { dst in
                try Cast.cast(src.baseAddress! + 1, from: from, into: dst.baseAddress!, as: to, count: count)
            }
        }
        return out
    }

    static func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    static func values<T: FixedWidthInteger>(_ bytes: [UInt8], as: T.Type) -> [T] {
        bytes.withUnsafeBytes { raw in
            (0..<(raw.count / MemoryLayout<T>.size)).map {
                raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)
            }
        }
    }

    @Test func f32ToHalfTypesMatchScalar() throws {
        let input = Self.patterns(10_001)  // not a multiple of the chunk or vector width
        let f16 = Self.values(try Self.castUnaligned(Self.bytes(input), from: .f32, to: .f16, count: input.count), as: UInt16.self)
        let bf16 = Self.values(try Self.castUnaligned(Self.bytes(input), from: .f32, to: .bf16, count: input.count), as: UInt16.self)
        #expect(f16 == input.map(FloatBits.f32ToF16))
        // NaNs become torch's one F32 -> BF16 NaN, all ones (fixtures/casts).
        let expected = input.map { $0 & 0x7FFF_FFFF > 0x7F80_0000 ? 0xFFFF : FloatBits.f32ToBF16($0) }
        #expect(bf16 == expected, "\(zip(bf16, expected).filter { $0 != $1 }.count) differ")
    }

    @Test func halfTypesWidenLikeScalar() throws {
        let input = (0..<65536).map { UInt16($0) }
        let fromF16 = Self.values(try Self.castUnaligned(Self.bytes(input), from: .f16, to: .f32, count: input.count), as: UInt32.self)
        let fromBF16 = Self.values(try Self.castUnaligned(Self.bytes(input), from: .bf16, to: .f32, count: input.count), as: UInt32.self)
        #expect(fromF16 == input.map(FloatBits.f16ToF32))
        #expect(fromBF16 == input.map(FloatBits.bf16ToF32))
    }

    @Test func f16ToBF16RoundsOnce() throws {
        let input = (0..<65536).map { UInt16($0) }
        let out = Self.values(try Self.castUnaligned(Self.bytes(input), from: .f16, to: .bf16, count: input.count), as: UInt16.self)
        // F16 NaNs become torch's 0x7FC0 (c10's BFloat16 for every source but F32).
        let expected = input.map { $0 & 0x7FFF > 0x7C00 ? 0x7FC0 : FloatBits.f32ToBF16(FloatBits.f16ToF32($0)) }
        #expect(out == expected, "\(zip(out, expected).filter { $0 != $1 }.count) differ")
    }

    @Test func minifloatsWidenThroughTheirTables() throws {
        let input = (0..<256).map { UInt8($0) }
        for dtype in [DType.f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ] {
            let out = Self.values(try Self.castUnaligned(input, from: dtype, to: .f32, count: 256), as: UInt32.self)
            #expect(out == Minifloat.of(dtype)!.table)
        }
    }

    @Test func f64NarrowsWithHardwareRounding() throws {
        let doubles: [Double] = [0, -0.0, 1.0 / 3.0, 1e300, -1e-300, .infinity, 65504.0001, 3.4028235677973366e38]
        let out = Self.values(
            try Self.castUnaligned(Self.bytes(doubles.map(\.bitPattern)), from: .f64, to: .f32, count: doubles.count), as: UInt32.self)
        #expect(out == doubles.map { Float($0).bitPattern })
    }

    @Test func refusesNonFloatAndSubByteCasts() {
        #expect(!Cast.canCast(from: .i32, to: .f32))
        #expect(!Cast.canCast(from: .f4, to: .f32))
        #expect(!Cast.canCast(from: .c64, to: .f32))
        #expect(!Cast.canCast(from: .f32, to: .f64))
        #expect(throws: CastError.unsupported(from: .u8, to: .f16)) {
            try Cast.cast(UnsafeRawPointer(bitPattern: 64)!, from: .u8, into: UnsafeMutableRawPointer(bitPattern: 64)!, as: .f16, count: 0)
        }
    }
}
