import CHDF5
import MoECkptTensors

/// How each dtype is stored in HDF5, as a table. Integers and IEEE floats are HDF5's standard
/// little-endian types; F16, BF16 and the 8-bit floats are HDF5 custom floats (F16 as h5py builds
/// it, BF16 as the specification in docs/HDF5.md gives); BOOL is h5py's enum over int8; C64 is
/// h5py's compound {r, i}; types HDF5 cannot describe (F8_E8M0, F4, F6) are opaque bytes. Every
/// dataset whose dtype is not obvious from its type also carries a `dtype` string attribute.
enum HDF5Types {
    /// A float's bit fields: sign position, exponent position and size, mantissa position and
    /// size, exponent bias, size in bytes.
    struct FloatLayout: Equatable {
        let size: Int, sign: Int, exponentPosition: Int, exponentSize: Int, mantissaPosition: Int, mantissaSize: Int, bias: Int
    }

    static let floatLayouts: [(DType, FloatLayout)] = [
        (.f64, FloatLayout(size: 8, sign: 63, exponentPosition: 52, exponentSize: 11, mantissaPosition: 0, mantissaSize: 52, bias: 1023)),
        (.f32, FloatLayout(size: 4, sign: 31, exponentPosition: 23, exponentSize: 8, mantissaPosition: 0, mantissaSize: 23, bias: 127)),
        (.f16, FloatLayout(size: 2, sign: 15, exponentPosition: 10, exponentSize: 5, mantissaPosition: 0, mantissaSize: 10, bias: 15)),
        (.bf16, FloatLayout(size: 2, sign: 15, exponentPosition: 7, exponentSize: 8, mantissaPosition: 0, mantissaSize: 7, bias: 127)),
        (.f8E5M2, FloatLayout(size: 1, sign: 7, exponentPosition: 2, exponentSize: 5, mantissaPosition: 0, mantissaSize: 2, bias: 15)),
        (.f8E4M3, FloatLayout(size: 1, sign: 7, exponentPosition: 3, exponentSize: 4, mantissaPosition: 0, mantissaSize: 3, bias: 7)),
        (.f8E5M2FNUZ, FloatLayout(size: 1, sign: 7, exponentPosition: 2, exponentSize: 5, mantissaPosition: 0, mantissaSize: 2, bias: 16)),
        (.f8E4M3FNUZ, FloatLayout(size: 1, sign: 7, exponentPosition: 3, exponentSize: 4, mantissaPosition: 0, mantissaSize: 3, bias: 8)),
    ]

    static let integers: [(DType, @Sendable () -> hid_t)] = [
        (.i8, moeckpt_h5t_std_i8le), (.i16, moeckpt_h5t_std_i16le), (.i32, moeckpt_h5t_std_i32le), (.i64, moeckpt_h5t_std_i64le),
        (.u8, moeckpt_h5t_std_u8le), (.u16, moeckpt_h5t_std_u16le), (.u32, moeckpt_h5t_std_u32le), (.u64, moeckpt_h5t_std_u64le),
    ]

    /// Dtypes whose HDF5 type does not name them exactly: written with a `dtype` attribute.
    static func needsDtypeAttribute(_ dtype: DType) -> Bool {
        switch dtype {
        // BF16 too: h5py reads its custom float as float32, and only the attribute tells them apart.
        case .bf16, .f8E4M3, .f8E5M2, .f8E4M3FNUZ, .f8E5M2FNUZ, .f8E8M0, .f4, .f6E2M3, .f6E3M2: true
        default: false
        }
    }

    /// The file type for a dtype (the caller owns the handle).
    static func fileType(_ dtype: DType) throws(HDF5Error) -> HDF5Handle {
        if let (_, predefined) = integers.first(where: { $0.0 == dtype }) {
            return try HDF5Handle(H5Tcopy(predefined()), "copy integer type", close: H5Tclose)
        }
        if let (_, layout) = floatLayouts.first(where: { $0.0 == dtype }) {
            let base = layout.size == 8 ? moeckpt_h5t_ieee_f64le() : moeckpt_h5t_ieee_f32le()
            let type = try HDF5Handle(H5Tcopy(base), "copy float type", close: H5Tclose)
            if layout.size < 4 {
                // Shrink in the order libhdf5 accepts: fields first, then precision and size.
                try HDF5.check(
                    H5Tset_fields(
                        type.id, layout.sign, layout.exponentPosition, layout.exponentSize,
                        layout.mantissaPosition, layout.mantissaSize), "set float fields")
                try HDF5.check(H5Tset_offset(type.id, 0), "set float offset")
                try HDF5.check(H5Tset_precision(type.id, layout.size * 8), "set float precision")
                try HDF5.check(H5Tset_size(type.id, layout.size), "set float size")
                try HDF5.check(H5Tset_ebias(type.id, layout.bias), "set float bias")
            }
            return type
        }
        switch dtype {
        case .bool:
            let type = try HDF5Handle(H5Tenum_create(moeckpt_h5t_std_i8le()), "create bool enum", close: H5Tclose)
            var no: Int8 = 0, yes: Int8 = 1
            try HDF5.check(H5Tenum_insert(type.id, "FALSE", &no), "insert FALSE")
            try HDF5.check(H5Tenum_insert(type.id, "TRUE", &yes), "insert TRUE")
            return type
        case .c64:
            let type = try HDF5Handle(H5Tcreate(H5T_COMPOUND, 8), "create complex type", close: H5Tclose)
            try HDF5.check(H5Tinsert(type.id, "r", 0, moeckpt_h5t_ieee_f32le()), "insert r")
            try HDF5.check(H5Tinsert(type.id, "i", 4, moeckpt_h5t_ieee_f32le()), "insert i")
            return type
        case .f8E8M0:
            let type = try HDF5Handle(H5Tcreate(H5T_OPAQUE, 1), "create opaque type", close: H5Tclose)
            try HDF5.check(H5Tset_tag(type.id, "moeckpt:\(dtype.name)"), "tag opaque type")
            return type
        default:
            throw HDF5Error(operation: "no HDF5 type for \(dtype.name)", reason: "")
        }
    }

    /// What a dataset's type holds, or nil if moeckpt cannot represent it. `declared` is the
    /// dataset's `dtype` attribute.
    static func dtype(of type: hid_t, declared: String?) -> DType? {
        let size = H5Tget_size(type)
        let declaredDtype = declared.flatMap { DType(rawValue: $0.uppercased()) ?? ($0 == "bfloat16" ? .bf16 : nil) }
        switch H5Tget_class(type) {
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            return integers.first {
                $0.0.byteWidth == size && ($0.0.kind == .signedInteger) == signed
                    && H5Tget_precision(type) == size * 8
            }?.0
        case H5T_FLOAT:
            var sign = 0, ePos = 0, eSize = 0, mPos = 0, mSize = 0
            guard H5Tget_fields(type, &sign, &ePos, &eSize, &mPos, &mSize) >= 0 else { return nil }
            let layout = FloatLayout(
                size: size, sign: sign, exponentPosition: ePos, exponentSize: eSize, mantissaPosition: mPos,
                mantissaSize: mSize, bias: Int(H5Tget_ebias(type)))
            let matches = floatLayouts.filter { $0.1 == layout }.map(\.0)
            if let declaredDtype, matches.contains(declaredDtype) { return declaredDtype }
            return matches.first
        case H5T_ENUM:
            guard size == 1, H5Tget_nmembers(type) == 2 else { return nil }
            var values: [Int8] = [0, 0]
            for i in 0..<2 { H5Tget_member_value(type, UInt32(i), &values[i]) }
            let names = (0..<2).map { i -> String in
                guard let name = H5Tget_member_name(type, UInt32(i)) else { return "" }
                defer { H5free_memory(name) }
                return String(cString: name)
            }
            let members = Dictionary(uniqueKeysWithValues: zip(names, values))
            return members == ["FALSE": 0, "TRUE": 1] ? .bool : nil
        case H5T_COMPOUND:
            guard size == 8, H5Tget_nmembers(type) == 2 else { return nil }
            for (i, expected) in ["r", "i"].enumerated() {
                guard let name = H5Tget_member_name(type, UInt32(i)) else { return nil }
                defer { H5free_memory(name) }
                let member = H5Tget_member_type(type, UInt32(i))
                defer { H5Tclose(member) }
                guard String(cString: name) == expected, H5Tget_member_offset(type, UInt32(i)) == 4 * i,
                    H5Tget_class(member) == H5T_FLOAT, H5Tget_size(member) == 4
                else { return nil }
            }
            return .c64
        case H5T_OPAQUE:
            var tag = ""
            if let raw = H5Tget_tag(type) {
                tag = String(cString: raw)
                H5free_memory(raw)
            }
            let named =
                declaredDtype ?? (tag.hasPrefix("moeckpt:") ? DType(rawValue: String(tag.dropFirst(8))) : nil)
                ?? (tag.lowercased().contains("bfloat16") ? .bf16 : nil)
            guard let named, let width = named.byteWidth, width == size else { return nil }
            return named
        default:
            return nil
        }
    }

    /// A readable name for an HDF5 type, for error messages.
    static func describe(_ type: hid_t) -> String {
        let size = H5Tget_size(type)
        let order = H5Tget_order(type) == H5T_ORDER_BE ? " big-endian" : ""
        switch H5Tget_class(type) {
        case H5T_INTEGER: return "\(size)-byte\(order) integer of precision \(H5Tget_precision(type))"
        case H5T_FLOAT: return "\(size)-byte\(order) float of an unknown layout"
        case H5T_STRING: return H5Tis_variable_str(type) > 0 ? "variable-length string" : "fixed-length string"
        case H5T_COMPOUND: return "compound of \(H5Tget_nmembers(type)) members"
        case H5T_REFERENCE: return "reference"
        case H5T_VLEN: return "variable-length sequence"
        case H5T_ARRAY: return "array"
        case H5T_ENUM: return "enum"
        case H5T_OPAQUE: return "\(size)-byte opaque"
        case H5T_BITFIELD: return "bitfield"
        case H5T_TIME: return "time"
        default: return "unknown class"
        }
    }
}
