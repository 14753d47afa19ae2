import Testing

@testable import MoECkptTensors

struct DTypeTests {
    @Test func everyReferenceDtypeIsKnownWithItsWidth() {
        let expectedBits: [String: Int] = [
            "BOOL": 8, "U8": 8, "I8": 8, "U16": 16, "I16": 16, "U32": 32, "I32": 32, "U64": 64, "I64": 64,
            "F16": 16, "BF16": 16, "F32": 32, "F64": 64, "C64": 64, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8,
            "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
        ]
        #expect(DType.allCases.count == expectedBits.count)
        for (name, bits) in expectedBits {
            #expect(DType(rawValue: name)?.bits == bits, "\(name)")
        }
    }

    @Test func orderIsTheReferenceWritersOrder() {
        #expect(DType.bool < .f4 && .f4 < .u8 && .f8E5M2 < .f8E4M3 && .i16 < .u16 && .f16 < .bf16)
        #expect(.f32 < .c64 && .c64 < .f64 && .f64 < .i64 && .i64 < .u64)
    }

    @Test func userSpellings() {
        #expect(DType(userSpelling: "bf16") == .bf16)
        #expect(DType(userSpelling: "float16") == .f16)
        #expect(DType(userSpelling: "F32") == .f32)
        #expect(DType(userSpelling: "f12") == nil)
    }

    @Test func byteCountsAreChecked() throws {
        #expect(try Shape.byteCount([], dtype: .f32) == 4)
        #expect(try Shape.byteCount([2, 0, 3], dtype: .f64) == 0)
        #expect(try Shape.byteCount([4, 4], dtype: .f4) == 8)
        #expect(try Shape.byteCount([2, 4], dtype: .f6E2M3) == 6)
        #expect(throws: ShapeError.subByteNotWholeBytes(elements: 3, bits: 4)) { try Shape.byteCount([3], dtype: .f4) }
        #expect(throws: ShapeError.overflow) { try Shape.byteCount([1 << 32, 1 << 32], dtype: .u8) }
        #expect(throws: ShapeError.overflow) { try Shape.byteCount([1 << 31, 1 << 31], dtype: .f32) }
        #expect(throws: ShapeError.negativeDimension(-1)) { try Shape.byteCount([-1], dtype: .u8) }
    }
}

/// The kernel's CPU lists (/proc/self/status `Cpus_allowed_list`), as the default thread count reads them.
struct CPUBudgetTests {
    @Test func cpuListsCount() {
        #expect(CPUBudget.cpuListCount("0-3,8,10-11\n") == 7)
        #expect(CPUBudget.cpuListCount("0") == 1)
        for bad in ["", "3-1", "a", "1-", "0,,2"] { #expect(CPUBudget.cpuListCount(bad) == nil, "\(bad)") }
        #expect(CPUBudget.usableCPUs >= 1)
    }
}
