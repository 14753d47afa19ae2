import MoECkptTensors

/// One tensor as a GGUF header describes it: `dimensions` in ggml order (innermost first), its
/// offset relative to the data section.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    public let dimensions: [Int]
    public let type: GGMLType
    public let offset: Int
    public let byteCount: Int

    /// The shape as safetensors and PyTorch write it (outermost first).
    public var shape: [Int] { dimensions.reversed() }
}

/// A parsed and validated GGUF header (versions 2 and 3, little-endian).
public struct GGUFHeader: Sendable {
    public static let magic: [UInt8] = Array("GGUF".utf8)
    public static let defaultAlignment = 32
    /// ggml's limits: `GGML_MAX_DIMS`, and names of `GGML_MAX_NAME` bytes with their NUL.
    public static let maximumDimensions = 4
    public static let maximumNameBytes = 63

    public let version: Int
    /// The key/values in file order.
    public let keyValues: [(key: String, value: GGUFValue)]
    /// The tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Where the data section starts in the file.
    public let dataStart: Int

    public func value(_ key: String) -> GGUFValue? { keyValues.first { $0.key == key }?.value }

    /// `split.count`, `split.no` and `split.tensors.count` of a split model's part.
    var splitCount: Int? { integer("split.count") }
    var splitNumber: Int? { integer("split.no") }
    var splitTensorCount: Int? { integer("split.tensors.count") }

    private func integer(_ key: String) -> Int? {
        switch value(key) {
        case .uint16(let v)?: Int(v)
        case .int32(let v)?: Int(v)
        case .uint32(let v)?: Int(v)
        default: nil
        }
    }

    /// Parses and validates the header of a whole GGUF file held in `file`. The rules, in the order
    /// they are checked, each with its own error: the magic; version 2 or 3; counts that the file
    /// can hold; every key a non-empty UTF-8 string, unique, with a value of types 0-12 (arrays
    /// of scalars or strings, not of arrays) inside the file; `general.alignment` a u32 power of
    /// two; every tensor name UTF-8, at most 63 bytes and unique, at most 4 dimensions, a known
    /// ggml type, `ne[0]` a whole number of its blocks, its offset aligned and its bytes inside
    /// the data section, no two tensors overlapping.
    public static func parse(_ file: UnsafeRawBufferPointer) throws(GGUFError) -> GGUFHeader {
        var reader = Reader(bytes: file)
        guard file.count >= 4, Array(file[0..<4]) == magic else { throw .notGGUF }
        reader.position = 4
        let version = Int(try reader.u32("the version"))
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        let tensorCount = try reader.u64("the tensor count"), keyCount = try reader.u64("the key/value count")
        // Each key/value takes at least 13 bytes (length, a 1-byte key, type), each tensor 25.
        guard keyCount <= UInt64(file.count / 13) else { throw .countTooLarge(what: "key/values", count: keyCount) }
        guard tensorCount <= UInt64(file.count / 25) else { throw .countTooLarge(what: "tensors", count: tensorCount) }

        var keyValues: [(key: String, value: GGUFValue)] = []
        var keys = Set<String>()
        for _ in 0..<Int(keyCount) {
            let key = try reader.string("a key")
            guard !key.isEmpty else { throw .emptyKey }
            guard keys.insert(key).inserted else { throw .duplicateKey(key) }
            keyValues.append((key, try reader.value(of: try reader.valueType(key), key: key, nested: false)))
        }
        var alignment = defaultAlignment
        if let value = keyValues.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0 else { throw .badAlignment(value.text ?? "an array") }
            alignment = Int(a)
        }

        var infos: [(name: String, dimensions: [Int], type: GGMLType, offset: UInt64)] = []
        var names = Set<String>()
        for _ in 0..<Int(tensorCount) {
            let name = try reader.string("a tensor name")
            guard name.utf8.count <= maximumNameBytes else { throw .tensorNameTooLong(name) }
            guard names.insert(name).inserted else { throw .duplicateTensor(name) }
            let rank = try reader.u32("\(name)'s dimension count")
            guard rank <= maximumDimensions else { throw .tooManyDimensions(tensor: name, count: Int(rank)) }
            var dimensions: [Int] = []
            for _ in 0..<Int(rank) {
                let ne = try reader.u64("\(name)'s dimensions")
                guard ne <= UInt64(Int.max) else { throw .sizeOverflow(tensor: name) }
                dimensions.append(Int(ne))
            }
            let raw = try reader.u32("\(name)'s type")
            guard let type = GGMLType(rawValue: raw) else { throw .unknownGGMLType(tensor: name, type: raw) }
            infos.append((name, dimensions, type, try reader.u64("\(name)'s offset")))
        }
        let dataStart = (reader.position + alignment - 1) / alignment * alignment
        let dataBytes = max(0, file.count - dataStart)

        var tensors: [GGUFTensorInfo] = []
        for info in infos {
            let rowElements = info.dimensions.first ?? 1
            guard rowElements % info.type.blockSize == 0 else {
                throw .rowNotWholeBlocks(tensor: info.name, elements: rowElements, type: info.type.name)
            }
            var bytes = Checked(rowElements / info.type.blockSize) * info.type.blockBytes
            for ne in info.dimensions.dropFirst() { bytes = bytes * ne }
            guard let byteCount = bytes.value else { throw .sizeOverflow(tensor: info.name) }
            guard info.offset % UInt64(alignment) == 0 else {
                throw .misalignedOffset(tensor: info.name, offset: info.offset, alignment: alignment)
            }
            guard info.offset <= UInt64(dataBytes), byteCount <= dataBytes - Int(info.offset) else {
                throw .outsideData(tensor: info.name, offset: info.offset, bytes: byteCount, dataBytes: dataBytes)
            }
            tensors.append(
                GGUFTensorInfo(
                    name: info.name, dimensions: info.dimensions, type: info.type, offset: Int(info.offset), byteCount: byteCount))
        }
        let byOffset = tensors.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset && b.byteCount > 0 {
            throw .overlap(tensor: b.name, other: a.name)
        }
        return GGUFHeader(version: version, keyValues: keyValues, tensors: tensors, alignment: alignment, dataStart: dataStart)
    }

    /// Little-endian reads that stop at the end of the file with the thing being read named.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        mutating func take(_ count: Int, _ what: String) throws(GGUFError) -> UnsafeRawBufferPointer {
            guard count >= 0, count <= bytes.count - position else { throw .truncated(what) }
            defer { position += count }
            return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
        }

        mutating func scalar<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(GGUFError) -> T {
            T(littleEndian: try take(MemoryLayout<T>.size, what).loadUnaligned(as: T.self))
        }

        mutating func u32(_ what: String) throws(GGUFError) -> UInt32 { try scalar(UInt32.self, what) }
        mutating func u64(_ what: String) throws(GGUFError) -> UInt64 { try scalar(UInt64.self, what) }

        mutating func string(_ what: String) throws(GGUFError) -> String {
            let length = try u64("the length of \(what)")
            guard length <= UInt64(bytes.count - position) else { throw .truncated(what) }
            let raw = try take(Int(length), what)
            guard let text = String(validating: raw, as: UTF8.self) else { throw .notUTF8(what) }
            return text
        }

        mutating func valueType(_ key: String) throws(GGUFError) -> GGUFValueType {
            let raw = try u32("\(key)'s type")
            guard let type = GGUFValueType(rawValue: raw) else { throw .unknownValueType(key: key, type: raw) }
            return type
        }

        mutating func value(of type: GGUFValueType, key: String, nested: Bool) throws(GGUFError) -> GGUFValue {
            let what = "\(key)'s value"
            switch type {
            case .uint8: return .uint8(try scalar(UInt8.self, what))
            case .int8: return .int8(try scalar(Int8.self, what))
            case .uint16: return .uint16(try scalar(UInt16.self, what))
            case .int16: return .int16(try scalar(Int16.self, what))
            case .uint32: return .uint32(try scalar(UInt32.self, what))
            case .int32: return .int32(try scalar(Int32.self, what))
            case .float32: return .float32(Float(bitPattern: try scalar(UInt32.self, what)))
            case .bool:
                let byte = try scalar(UInt8.self, what)
                guard byte <= 1 else { throw .badBool(key: key, byte: byte) }
                return .bool(byte == 1)
            case .string: return .string(try string(what))
            case .uint64: return .uint64(try scalar(UInt64.self, what))
            case .int64: return .int64(try scalar(Int64.self, what))
            case .float64: return .float64(Double(bitPattern: try scalar(UInt64.self, what)))
            case .array:
                guard !nested else { throw .nestedArray(key: key) }
                let elementType = try valueType(key)
                guard elementType != .array else { throw .nestedArray(key: key) }
                let count = try u64("\(key)'s element count")
                // Elements take at least their width (a string at least its 8-byte length).
                let smallest = UInt64(elementType.width ?? 8)
                guard count <= UInt64(bytes.count - position) / smallest else { throw .truncated(what) }
                var elements: [GGUFValue] = []
                elements.reserveCapacity(Int(count))
                for _ in 0..<Int(count) { elements.append(try value(of: elementType, key: key, nested: true)) }
                return .array(elementType: elementType, elements)
            }
        }
    }
}

/// Why a file is not a valid GGUF checkpoint, one case per rule.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    case notGGUF
    case unsupportedVersion(Int)
    case countTooLarge(what: String, count: UInt64)
    case truncated(String)
    case notUTF8(String)
    case emptyKey
    case duplicateKey(String)
    case unknownValueType(key: String, type: UInt32)
    case nestedArray(key: String)
    case badBool(key: String, byte: UInt8)
    case badAlignment(String)
    case tensorNameTooLong(String)
    case duplicateTensor(String)
    case tooManyDimensions(tensor: String, count: Int)
    case unknownGGMLType(tensor: String, type: UInt32)
    case rowNotWholeBlocks(tensor: String, elements: Int, type: String)
    case sizeOverflow(tensor: String)
    case misalignedOffset(tensor: String, offset: UInt64, alignment: Int)
    case outsideData(tensor: String, offset: UInt64, bytes: Int, dataBytes: Int)
    case overlap(tensor: String, other: String)
    case unsupportedType(tensor: String, type: String)
    case splitName(count: Int)
    case splitPartMissing(Int, of: Int)
    case splitPartMismatch(expected: Int, count: Int)
    case splitTensorCount(expected: Int, found: Int)

    public var description: String {
        switch self {
        case .notGGUF: "not a GGUF file (it does not start with the magic \"GGUF\")"
        case .unsupportedVersion(let v):
            v == 1 ? "GGUF version 1 (32-bit counts) is not read; convert it with a newer llama.cpp" : "unknown GGUF version \(v)"
        case .countTooLarge(let what, let count): "the header claims \(count) \(what), more than the file can hold"
        case .truncated(let what): "the file ends inside \(what)"
        case .notUTF8(let what): "\(what) is not UTF-8"
        case .emptyKey: "a metadata key is empty"
        case .duplicateKey(let key): "metadata key \(key) appears twice"
        case .unknownValueType(let key, let type): "\(key) has unknown value type \(type) (GGUF has 0-12)"
        case .nestedArray(let key): "\(key) is an array of arrays, which GGUF does not allow"
        case .badBool(let key, let byte): "\(key) is a bool stored as \(byte) (0 or 1 expected)"
        case .badAlignment(let value): "general.alignment is \(value); it must be a u32 power of two"
        case .tensorNameTooLong(let name): "tensor name \(name) is longer than 63 bytes (ggml's limit)"
        case .duplicateTensor(let name): "tensor \(name) appears twice"
        case .tooManyDimensions(let tensor, let count): "\(tensor) has \(count) dimensions; ggml has at most 4"
        case .unknownGGMLType(let tensor, let type): "\(tensor) has unknown ggml type \(type)"
        case .rowNotWholeBlocks(let tensor, let elements, let type):
            "\(tensor): a row of \(elements) elements is not a whole number of \(type) blocks"
        case .sizeOverflow(let tensor): "\(tensor): its size overflows 64 bits"
        case .misalignedOffset(let tensor, let offset, let alignment): "\(tensor): offset \(offset) is not a multiple of \(alignment)"
        case .outsideData(let tensor, let offset, let bytes, let dataBytes):
            "\(tensor): \(bytes) bytes at offset \(offset) go past the data section's \(dataBytes) bytes"
        case .overlap(let tensor, let other): "\(tensor) overlaps \(other)"
        case .splitName(let count):
            "a part of a model split in \(count), but not named NAME-0000i-of-\(count < 10_000 ? "0000" : "")\(count).gguf"
        case .splitPartMissing(let index, let count): "part \(index) of \(count) of the split model is missing"
        case .splitPartMismatch(let expected, let count): "this file is not part \(expected + 1) of \(count) (its split.no or split.count)"
        case .splitTensorCount(let expected, let found): "split.tensors.count is \(expected) but the parts hold \(found) tensors"
        case .unsupportedType(let tensor, let type):
            "\(tensor) is \(type), which moeckpt does not read yet (it reads \(GGMLType.readable.map(\.name).joined(separator: ", ")))"
        }
    }
}
