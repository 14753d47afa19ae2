import MoECkptTestSupport
import Testing

@testable import MoECkptTensors

/// Conversions checked against tables that numpy, torch and ml_dtypes produced
/// (scripts/make_fixtures.py, fixtures/dtypes/README.md).
struct FloatConversionTests {
    static func isNaN32(_ bits: UInt32) -> Bool { bits & 0x7FFF_FFFF > 0x7F80_0000 }
    static func isNaN16(_ bits: UInt16) -> Bool { bits & 0x7FFF > 0x7C00 }
    static func isNaNBF16(_ bits: UInt16) -> Bool { bits & 0x7FFF > 0x7F80 }

    @Test func everyF16WidensLikeNumpy() throws {
        let expected = try Fixtures.array("dtypes/f16_to_f32.bin", of: UInt32.self)
        #expect(expected.count == 65536)
        var mismatches = 0
        for h in 0..<65536 {
            let got = FloatBits.f16ToF32(UInt16(h))
            if Self.isNaN32(expected[h]) {
                // NaN: same sign and payload; numpy's hardware path may set the quiet bit.
                if got | 0x0040_0000 != expected[h] | 0x0040_0000 { mismatches += 1 }
            } else if got != expected[h] {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }

    @Test func everyBF16WidensLikeTorch() throws {
        let expected = try Fixtures.array("dtypes/bf16_to_f32.bin", of: UInt32.self)
        #expect(expected.count == 65536)
        #expect((0..<65536).allSatisfy { FloatBits.bf16ToF32(UInt16($0)) == expected[$0] })
    }

    @Test func everyF16AndBF16RoundTripsThroughF32() {
        for h in 0..<65536 {
            let bits = UInt16(h)
            let backF16 = FloatBits.f32ToF16(FloatBits.f16ToF32(bits))
            let backBF16 = FloatBits.f32ToBF16(FloatBits.bf16ToF32(bits))
            if Self.isNaN16(bits) {
                #expect(Self.isNaN16(backF16))
            } else {
                #expect(backF16 == bits)
            }
            if Self.isNaNBF16(bits) {
                #expect(Self.isNaNBF16(backBF16))
            } else {
                #expect(backBF16 == bits)
            }
        }
    }

    @Test func f32NarrowsToF16AndBF16LikeTorch() throws {
        let inputs = try Fixtures.array("dtypes/f32_inputs.bin", of: UInt32.self)
        let f16 = try Fixtures.array("dtypes/f32_to_f16.bin", of: UInt16.self)
        let bf16 = try Fixtures.array("dtypes/f32_to_bf16.bin", of: UInt16.self)
        #expect(inputs.count > 300_000 && f16.count == inputs.count && bf16.count == inputs.count)
        var f16Mismatches: [UInt32] = []
        var bf16Mismatches: [UInt32] = []
        for (i, x) in inputs.enumerated() {
            if Self.isNaN32(x) {
                // torch's NaN encodings differ between code paths; a NaN must stay a NaN.
                if !Self.isNaN16(FloatBits.f32ToF16(x)) { f16Mismatches.append(x) }
                if !Self.isNaNBF16(FloatBits.f32ToBF16(x)) { bf16Mismatches.append(x) }
                continue
            }
            if FloatBits.f32ToF16(x) != f16[i] { f16Mismatches.append(x) }
            if FloatBits.f32ToBF16(x) != bf16[i] { bf16Mismatches.append(x) }
        }
        #expect(f16Mismatches.isEmpty, "first: \(f16Mismatches.prefix(5).map { String($0, radix: 16) })")
        #expect(bf16Mismatches.isEmpty, "first: \(bf16Mismatches.prefix(5).map { String($0, radix: 16) })")
    }

    @Test(arguments: [
        (DType.f8E4M3, "f8_e4m3"), (.f8E5M2, "f8_e5m2"), (.f8E8M0, "f8_e8m0"),
        (.f8E4M3FNUZ, "f8_e4m3fnuz"), (.f8E5M2FNUZ, "f8_e5m2fnuz"),
        (.f4, "f4"), (.f6E2M3, "f6_e2m3"), (.f6E3M2, "f6_e3m2"),
    ])
    func minifloatDecodesLikeMLDtypes(dtype: DType, file: String) throws {
        let expected = try Fixtures.array("dtypes/\(file)_to_f32.bin", of: UInt32.self)
        let table = try #require(Minifloat.of(dtype)).table
        #expect(table.count == expected.count)
        for (code, want) in expected.enumerated() {
            if Self.isNaN32(want) {
                #expect(Self.isNaN32(table[code]), "code \(code)")
            } else {
                #expect(table[code] == want, "code \(code): \(String(table[code], radix: 16)) vs \(String(want, radix: 16))")
            }
        }
    }
}
