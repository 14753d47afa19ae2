import MoECkptTensors

/// One tensor as a safetensors header describes it; offsets are relative to the data section.
public struct SafetensorsEntry: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let begin: Int
    public let end: Int
}

/// A parsed and validated safetensors header.
public struct SafetensorsHeader: Sendable {
    /// The reference crate refuses headers above this size; so do we.
    public static let maximumLength = 100_000_000
    public static let metadataKey = "__metadata__"
    /// Dimensions of a tensor at most (no real tensor has more than a handful).
    public static let maximumRank = 64

    /// Tensors sorted by their offsets, which tile the data section exactly.
    public let entries: [SafetensorsEntry]
    public let metadata: [String: String]
    /// Where the data section starts in the file (8 + header length).
    public let dataStart: Int

    /// Parses and validates the header of a whole safetensors file held in `file`.
    ///
    /// The rules, in the order they are checked, each with its own error: the file is not a Git LFS
    /// pointer or an HTML page; it holds an 8-byte length; the length is below the cap and inside
    /// the file; the header is UTF-8 JSON, an object, without duplicate keys; `__metadata__` maps
    /// strings to strings; every tensor has a known dtype, a valid shape, two offsets with
    /// begin <= end spanning exactly shape x dtype bytes (checked arithmetic); sorted by offset, each
    /// tensor starts where the previous one ended and the last ends where the file ends.
    public static func parse(_ file: UnsafeRawBufferPointer) throws(SafetensorsError) -> SafetensorsHeader {
        try rejectNonCheckpoint(file)
        guard file.count >= 8 else { throw .fileTooSmall(size: file.count) }
        let length = file.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard length <= UInt64(maximumLength) else { throw .headerTooLarge(length: length, limit: maximumLength) }
        guard 8 + Int(length) <= file.count else { throw .headerLengthOutOfBounds(length: length, fileSize: file.count) }
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[8..<(8 + Int(length))])
        guard isValidUTF8(headerBytes) else { throw .headerNotUTF8 }

        var metadata: [String: String] = [:]
        var entries: [SafetensorsEntry] = []
        var problem: SafetensorsError?
        do {
            // Member by member: the entries are kept, never the JSON tree of the whole header. The
            // whole header is still read after a bad entry, so that JSON errors and duplicate keys
            // come first, as the rules are ordered.
            _ = try JSONParser.forEachMember(
                of: headerBytes,
                parsing: { (key: String, parser: inout JSONParser) throws(JSONError) -> Bool in
                    // The common entry without JSON values (a header can list 1.4 million tensors).
                    if problem == nil, key != metadataKey, let plain = parser.plainTensorEntry() {
                        do throws(SafetensorsError) { entries.append(try plainEntry(name: key, plain)) } catch { problem = error }
                        return true
                    }
                    let value = try parser.value()
                    guard problem == nil else { return true }
                    do throws(SafetensorsError) {
                        if key == metadataKey {
                            metadata = try parseMetadata(value)
                        } else {
                            entries.append(try parseEntry(name: key, value))
                        }
                    } catch {
                        problem = error
                    }
                    return true
                })
        } catch {
            if case .duplicateKey(let key) = error { throw .duplicateKey(key) }
            if case .notAnObject = error {
                // Say what it is: a JSON value of another kind, or not JSON at all.
                do { _ = try JSONParser.parse(headerBytes) } catch { throw .headerNotJSON(error.description) }
                throw .headerNotObject
            }
            throw .headerNotJSON(error.description)
        }
        if let problem { throw problem }

        let dataStart = 8 + Int(length)
        try checkTiling(&entries, dataSectionSize: file.count - dataStart)
        return SafetensorsHeader(entries: entries, metadata: metadata, dataStart: dataStart)
    }

    /// Files people mistake for checkpoints: say what they are instead of "header too large".
    private static func rejectNonCheckpoint(_ file: UnsafeRawBufferPointer) throws(SafetensorsError) {
        let prefix = String(decoding: file.prefix(64), as: UTF8.self)
        if prefix.hasPrefix("version https://git-lfs.github.com/spec/") { throw .gitLFSPointer }
        let start = prefix.drop { $0.isWhitespace }.lowercased()
        if start.hasPrefix("<!doctype html") || start.hasPrefix("<html") { throw .htmlPage }
    }

    private static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // ASCII is the common case; only decode when a byte above 0x7F is present.
        if !bytes.contains(where: { $0 >= 0x80 }) { return true }
        return String(validating: bytes, as: UTF8.self) != nil
    }

    private static func parseMetadata(_ value: JSONValue) throws(SafetensorsError) -> [String: String] {
        guard case .object(let object) = value else { throw .metadataNotStringMap(key: metadataKey) }
        var metadata: [String: String] = [:]
        for (key, value) in object.entries {
            guard case .string(let text) = value else { throw .metadataNotStringMap(key: key) }
            metadata[key] = text
        }
        return metadata
    }

    /// Reads a JSON integer that must be a size or an offset.
    private enum Count { case value(Int), tooLarge, invalid }
    private static func count(_ value: JSONValue) -> Count {
        guard case .number(let text) = value else { return .invalid }
        if let int = value.nonNegativeInt { return .value(int) }
        let isDigits = text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return isDigits ? .tooLarge : .invalid
    }

    private static func parseEntry(name: String, _ value: JSONValue) throws(SafetensorsError) -> SafetensorsEntry {
        guard case .object(let fields) = value else {
            throw .malformedTensorEntry(tensor: name, reason: "entry is \(value.typeName), not an object")
        }
        guard case .string(let dtypeName)? = fields["dtype"] else {
            throw .malformedTensorEntry(tensor: name, reason: "\"dtype\" is missing or not a string")
        }
        guard case .array(let dims)? = fields["shape"] else {
            throw .malformedTensorEntry(tensor: name, reason: "\"shape\" is missing or not an array")
        }
        guard case .array(let offsets)? = fields["data_offsets"], offsets.count == 2 else {
            throw .malformedTensorEntry(tensor: name, reason: "\"data_offsets\" is missing or not a pair [begin, end]")
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDtype(tensor: name, dtype: dtypeName) }

        guard dims.count <= maximumRank else {
            throw .invalidShape(tensor: name, reason: "\(dims.count) dimensions, more than \(maximumRank)")
        }
        var shape: [Int] = []
        for dim in dims {
            switch count(dim) {
            case .value(let size): shape.append(size)
            case .tooLarge: throw .sizeOverflow(tensor: name)
            case .invalid:
                let text = if case .number(let n) = dim { n } else { dim.typeName }
                throw .invalidShape(tensor: name, reason: "dimension \(text) is not a non-negative integer")
            }
        }
        var bounds: [Int] = []
        for offset in offsets {
            switch count(offset) {
            case .value(let position): bounds.append(position)
            case .tooLarge: throw .sizeOverflow(tensor: name)
            case .invalid:
                throw .malformedTensorEntry(tensor: name, reason: "data_offsets must be non-negative integers")
            }
        }

        return try entry(name: name, dtype: dtype, shape: shape, begin: bounds[0], end: bounds[1])
    }

    /// An entry read in its plain form: the same checks, in the same order, as `parseEntry`.
    private static func plainEntry(name: String, _ plain: JSONParser.PlainTensorEntry) throws(SafetensorsError) -> SafetensorsEntry {
        guard plain.offsets.count == 2 else {
            throw .malformedTensorEntry(tensor: name, reason: "\"data_offsets\" is missing or not a pair [begin, end]")
        }
        guard let dtype = DType(rawValue: plain.dtype) else { throw .unknownDtype(tensor: name, dtype: plain.dtype) }
        guard plain.shape.count <= maximumRank else {
            throw .invalidShape(tensor: name, reason: "\(plain.shape.count) dimensions, more than \(maximumRank)")
        }
        return try entry(name: name, dtype: dtype, shape: plain.shape, begin: plain.offsets[0], end: plain.offsets[1])
    }

    /// The checks once sizes and offsets are integers: whole bytes, no overflow, begin <= end,
    /// and the offsets spanning exactly shape x dtype.
    private static func entry(name: String, dtype: DType, shape: [Int], begin: Int, end: Int) throws(SafetensorsError) -> SafetensorsEntry {
        let expected: Int
        do {
            expected = try Shape.byteCount(shape, dtype: dtype)
        } catch {
            switch error {
            case .subByteNotWholeBytes(let elements, let bits):
                throw .subByteNotWholeBytes(tensor: name, elements: elements, bits: bits)
            case .overflow, .negativeDimension:
                throw .sizeOverflow(tensor: name)
            }
        }
        guard begin <= end else { throw .offsetsReversed(tensor: name, begin: begin, end: end) }
        guard end - begin == expected else {
            throw .byteLengthMismatch(tensor: name, expected: expected, actual: end - begin)
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// One check for gaps, overlaps and coverage: sorted by offset, each tensor must start where the
    /// previous one ended, and the last must end where the data section ends.
    private static func checkTiling(_ entries: inout [SafetensorsEntry], dataSectionSize: Int) throws(SafetensorsError) {
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var position = 0
        for entry in entries {
            guard entry.begin == position else {
                throw .gapOrOverlap(tensor: entry.name, begin: entry.begin, expected: position)
            }
            position = entry.end
        }
        guard position == dataSectionSize else {
            throw .dataSectionMismatch(coveredByTensors: position, dataSection: dataSectionSize)
        }
    }
}

/// Opens single safetensors files.
public enum SafetensorsFile {
    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        let mapping = try FileMapping(path: path)
        let header: SafetensorsHeader
        do {
            header = try SafetensorsHeader.parse(mapping.bytes)
        } catch {
            throw FileError(path: path, problem: error)
        }
        let tensors = header.entries.map {
            StoredTensor(
                name: $0.name, dtype: $0.dtype, shape: $0.shape, byteCount: $0.end - $0.begin,
                storage: mapping, offset: header.dataStart + $0.begin)
        }
        return Checkpoint(path: path, format: .safetensors, tensors: tensors, metadata: header.metadata, files: [path])
    }
}
