import CHDF5

/// An attribute's value: a string (metadata when on the root group), or anything else as text.
enum HDF5Attribute: CustomStringConvertible {
    case string(String)
    case strings([String])
    case numbers([Double], count: Int)
    case other(String)

    static let shownValues = 8

    var description: String {
        switch self {
        case .string(let text): text
        case .strings(let list):
            "\(list.count) strings: " + list.prefix(Self.shownValues).joined(separator: ", ")
                + (list.count > Self.shownValues ? ", ..." : "")
        case .numbers(let values, let count):
            values.map { $0 == $0.rounded() && abs($0) < 1e15 ? String(Int($0)) : "\($0)" }.joined(separator: ", ")
                + (count > values.count ? ", ... (\(count) values)" : "")
        case .other(let type): type
        }
    }

    /// Reads an attribute; strings of any kind (fixed or variable length, scalar or 1-D) as text,
    /// integers and floats as numbers, anything else described by its type.
    static func read(_ attribute: hid_t, _ what: String) throws(HDF5Error) -> HDF5Attribute {
        let type = try HDF5Handle(H5Aget_type(attribute), "read the type of \(what)", close: H5Tclose)
        let space = try HDF5Handle(H5Aget_space(attribute), "read the shape of \(what)", close: H5Sclose)
        let count = Int(max(0, H5Sget_simple_extent_npoints(space.id)))
        switch H5Tget_class(type.id) {
        case H5T_STRING:
            let strings = try readStrings(attribute, type.id, count: count, what)
            return H5Sget_simple_extent_ndims(space.id) == 0 && strings.count == 1 ? .string(strings[0]) : .strings(strings)
        case H5T_INTEGER, H5T_FLOAT:
            var values = [Double](repeating: 0, count: count)
            if count > 0 {
                try HDF5.check(H5Aread(attribute, moeckpt_h5t_ieee_f64le(), &values), "read \(what)")
            }
            return .numbers(Array(values.prefix(shownValues)), count: count)
        default:
            return .other(HDF5Types.describe(type.id) + " [\(count)]")
        }
    }

    private static func readStrings(_ attribute: hid_t, _ type: hid_t, count: Int, _ what: String) throws(HDF5Error) -> [String] {
        guard count > 0 else { return [] }
        if H5Tis_variable_str(type) > 0 {
            let memory = try HDF5Handle(H5Tcopy(moeckpt_h5t_c_s1()), "string type", close: H5Tclose)
            try HDF5.check(H5Tset_size(memory.id, moeckpt_h5t_variable()), "string type")
            try HDF5.check(H5Tset_cset(memory.id, H5Tget_cset(type)), "string type")
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try HDF5.check(H5Aread(attribute, memory.id, &pointers), "read \(what)")
            defer { for pointer in pointers { H5free_memory(pointer) } }
            return pointers.map { $0.map { String(cString: $0) } ?? "" }
        }
        let size = H5Tget_size(type)
        guard size > 0, size < 1 << 24, count <= (1 << 30) / size else { return [] }
        var buffer = [UInt8](repeating: 0, count: size * count)
        try HDF5.check(H5Aread(attribute, type, &buffer), "read \(what)")
        return (0..<count).map { i in
            let bytes = buffer[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
