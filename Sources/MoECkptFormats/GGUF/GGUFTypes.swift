import MoECkptTensors

/// ggml's tensor types, with the block geometry of each (gguf-py's `GGML_QUANT_SIZES`, gguf
/// 0.19.0): a row of `ne[0]` elements is `ne[0] / blockSize` blocks of `blockBytes` bytes.
public enum GGMLType: UInt32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    private static let geometry: [GGMLType: (blockSize: Int, blockBytes: Int, name: String)] = [
        .f32: (1, 4, "F32"), .f16: (1, 2, "F16"), .q4_0: (32, 18, "Q4_0"), .q4_1: (32, 20, "Q4_1"),
        .q5_0: (32, 22, "Q5_0"), .q5_1: (32, 24, "Q5_1"), .q8_0: (32, 34, "Q8_0"), .q8_1: (32, 40, "Q8_1"),
        .q2_K: (256, 84, "Q2_K"), .q3_K: (256, 110, "Q3_K"), .q4_K: (256, 144, "Q4_K"), .q5_K: (256, 176, "Q5_K"),
        .q6_K: (256, 210, "Q6_K"), .q8_K: (256, 292, "Q8_K"), .iq2_XXS: (256, 66, "IQ2_XXS"), .iq2_XS: (256, 74, "IQ2_XS"),
        .iq3_XXS: (256, 98, "IQ3_XXS"), .iq1_S: (256, 50, "IQ1_S"), .iq4_NL: (32, 18, "IQ4_NL"), .iq3_S: (256, 110, "IQ3_S"),
        .iq2_S: (256, 82, "IQ2_S"), .iq4_XS: (256, 136, "IQ4_XS"), .i8: (1, 1, "I8"), .i16: (1, 2, "I16"),
        .i32: (1, 4, "I32"), .i64: (1, 8, "I64"), .f64: (1, 8, "F64"), .iq1_M: (256, 56, "IQ1_M"), .bf16: (1, 2, "BF16"),
        .tq1_0: (256, 54, "TQ1_0"), .tq2_0: (256, 66, "TQ2_0"), .mxfp4: (32, 17, "MXFP4"), .nvfp4: (64, 36, "NVFP4"),
        .q1_0: (128, 18, "Q1_0"),
    ]

    public var blockSize: Int { Self.geometry[self]!.blockSize }
    public var blockBytes: Int { Self.geometry[self]!.blockBytes }
    public var name: String { Self.geometry[self]!.name }

    /// Whether moeckpt writes this type (`GGMLBlocks`).
    public var isQuantizable: Bool { quantizer != nil }

    /// Writes `count` F32 values (a multiple of the block size) as blocks of this type; nil for
    /// the types moeckpt does not write.
    public var quantizer: (@Sendable (UnsafePointer<Float>, Int, UnsafeMutableRawPointer) -> Void)? {
        switch self {
        case .q8_0: { GGMLBlocks.quantizeQ8_0($0, count: $1, into: $2) }
        case .q4_0: { GGMLBlocks.quantizeQ4_0($0, count: $1, into: $2) }
        default: nil
        }
    }

    /// Writes the F32 values of `count` elements of this type's blocks; nil for the types
    /// moeckpt does not read.
    public var dequantizer: (@Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void)? {
        switch self {
        case .q8_0: { GGMLBlocks.dequantizeQ8_0($0, count: $1, into: $2) }
        case .q4_0: { GGMLBlocks.dequantizeQ4_0($0, count: $1, into: $2) }
        case .q4_K: { GGMLBlocks.dequantizeQ4_K($0, count: $1, into: $2) }
        case .q5_K: { GGMLBlocks.dequantizeQ5_K($0, count: $1, into: $2) }
        case .q6_K: { GGMLBlocks.dequantizeQ6_K($0, count: $1, into: $2) }
        case .mxfp4: { blocks, count, out in for i in 0..<count { out[i] = MXFP4Blocks.value(blocks, i) } }
        default: nil
        }
    }

    /// The types moeckpt reads, in enum order.
    public static var readable: [GGMLType] { allCases.filter { $0.dtype != nil || $0.dequantizer != nil } }

    /// The safetensors dtype of the same elements, for the unquantized types.
    public var dtype: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        default: nil
        }
    }

    /// The ggml type holding a safetensors dtype's elements as they are.
    public init?(_ dtype: DType) {
        guard let type = Self.allCases.first(where: { $0.dtype == dtype }) else { return nil }
        self = type
    }
}

/// A metadata value of a GGUF file, typed as stored (value types 0-12).
public enum GGUFValue: Equatable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float)
    case bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Elements of one scalar type (`elementType`); GGUF has no arrays of arrays.
    case array(elementType: GGUFValueType, [GGUFValue])

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// A scalar as text (numbers in their shortest form, booleans `true`/`false`); nil for arrays.
    public var text: String? {
        switch self {
        case .uint8(let v): String(v)
        case .int8(let v): String(v)
        case .uint16(let v): String(v)
        case .int16(let v): String(v)
        case .uint32(let v): String(v)
        case .int32(let v): String(v)
        case .float32(let v): String(Double(String(v)) ?? Double(v))
        case .bool(let v): v ? "true" : "false"
        case .string(let v): v
        case .uint64(let v): String(v)
        case .int64(let v): String(v)
        case .float64(let v): String(v)
        case .array: nil
        }
    }

    /// The value of an integer key/value, whatever its width.
    public var integer: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }
}

/// GGUF's value types, as numbered in the file.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8, array = 9
    case uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of a scalar of this type (nil for strings and arrays).
    var width: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }
}
