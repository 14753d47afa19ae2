/// What kind of number an element type holds; decides which conversions apply.
public enum DTypeKind: Sendable {
    case bool, unsignedInteger, signedInteger, float, complex
}

/// The element types of the safetensors format, spelled and ordered as the reference crate spells
/// and orders them. The declaration order is the reference's `Dtype` order, which its writer uses
/// to lay tensors out (descending), so `Comparable` follows it.
public enum DType: String, CaseIterable, Sendable, Hashable, Comparable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// One row per dtype: its width in bits and its kind.
    private static let table: [DType: (bits: Int, kind: DTypeKind)] = [
        .bool: (8, .bool),
        .f4: (4, .float), .f6E2M3: (6, .float), .f6E3M2: (6, .float),
        .u8: (8, .unsignedInteger), .i8: (8, .signedInteger),
        .f8E5M2: (8, .float), .f8E4M3: (8, .float), .f8E8M0: (8, .float),
        .f8E4M3FNUZ: (8, .float), .f8E5M2FNUZ: (8, .float),
        .i16: (16, .signedInteger), .u16: (16, .unsignedInteger),
        .f16: (16, .float), .bf16: (16, .float),
        .i32: (32, .signedInteger), .u32: (32, .unsignedInteger), .f32: (32, .float),
        .c64: (64, .complex), .f64: (64, .float),
        .i64: (64, .signedInteger), .u64: (64, .unsignedInteger),
    ]

    private static let rank: [DType: Int] = Dictionary(
        uniqueKeysWithValues: allCases.enumerated().map { ($0.element, $0.offset) })

    /// Width of one element in bits (4 and 6 for the sub-byte floats).
    public var bits: Int { Self.table[self]!.bits }
    public var kind: DTypeKind { Self.table[self]!.kind }
    public var isFloatingPoint: Bool { kind == .float }
    /// Whole bytes per element, or nil for the sub-byte types.
    public var byteWidth: Int? { bits % 8 == 0 ? bits / 8 : nil }
    /// The header spelling, e.g. `BF16`.
    public var name: String { rawValue }

    public static func < (lhs: DType, rhs: DType) -> Bool { rank[lhs]! < rank[rhs]! }

    /// PyTorch's name (`torch.bfloat16` → `bfloat16`), as transformers writes config.json's `dtype`.
    public var torchName: String? {
        [.f64: "float64", .f32: "float32", .f16: "float16", .bf16: "bfloat16"][self]
    }

    /// Parses a command-line spelling such as `bf16`, `F16` or `float32`.
    public init?(userSpelling: String) {
        let aliases: [String: DType] = [
            "float32": .f32, "float16": .f16, "half": .f16, "fp32": .f32, "fp16": .f16, "fp64": .f64,
            "bfloat16": .bf16, "float64": .f64, "double": .f64, "float": .f32,
        ]
        let lowered = userSpelling.lowercased()
        if let alias = aliases[lowered] { self = alias; return }
        guard let dtype = DType(rawValue: userSpelling.uppercased()) else { return nil }
        self = dtype
    }
}
