import MoECkptTensors

/// Every rule a `.moeckpt` file can break (docs/FORMAT.md), each naming the region or tensor.
public enum MoeckptError: Error, CustomStringConvertible, Equatable, Sendable {
    case notMoeckpt
    case truncatedPreamble(size: Int)
    case newerVersion(file: String, supported: String)
    case nonzeroReserved
    case headerOutOfBounds(length: UInt64, fileSize: Int)
    case headerChecksumMismatch(stored: UInt32, computed: UInt32)
    case headerNotJSON(String)
    case malformedHeader(String)
    case unknownDtype(tensor: String, dtype: String)
    case duplicateTensor(String)
    case dataOffsetMismatch(declared: Int, expected: Int)
    case fileSizeMismatch(declared: Int, actual: Int)
    case nonzeroPadding(region: String)
    case tensorMisaligned(tensor: String, offset: Int)
    case tensorLengthMismatch(tensor: String, expected: Int, declared: Int)
    case tensorOutOfBounds(tensor: String)
    case tensorsOverlap(tensor: String, previous: String)
    case tensorChecksumMismatch(tensor: String, stored: UInt32, computed: UInt32)

    public var description: String {
        switch self {
        case .notMoeckpt: "not a .moeckpt file (no MOECKPT magic)"
        case .truncatedPreamble(let size): "file is \(size) bytes, shorter than the 32-byte preamble"
        case .newerVersion(let file, let supported):
            "format version \(file) is newer than this moeckpt reads (\(supported)); update moeckpt"
        case .nonzeroReserved: "preamble's reserved bytes are not zero (corrupt preamble)"
        case .headerOutOfBounds(let length, let size): "header length \(length) runs past the end of the \(size)-byte file"
        case .headerChecksumMismatch(let stored, let computed):
            "header checksum mismatch (stored \(CRC32C.hex(stored)), computed \(CRC32C.hex(computed))): the header is corrupt"
        case .headerNotJSON(let why): "header is not valid JSON: \(why)"
        case .malformedHeader(let why): "header is malformed: \(why)"
        case .unknownDtype(let tensor, let dtype): "tensor \"\(tensor)\" has dtype \"\(dtype)\", which moeckpt does not know"
        case .duplicateTensor(let name): "tensor \"\(name)\" appears twice in the header"
        case .dataOffsetMismatch(let declared, let expected):
            "data_offset \(declared) is not the first 4096-byte boundary after the header (\(expected))"
        case .fileSizeMismatch(let declared, let actual):
            "file is \(actual) bytes but the header declares \(declared) (truncated or extended)"
        case .nonzeroPadding(let region): "padding \(region) is not zero (corrupt file)"
        case .tensorMisaligned(let tensor, let offset): "tensor \"\(tensor)\" starts at \(offset), not on a 64-byte boundary"
        case .tensorLengthMismatch(let tensor, let expected, let declared):
            "tensor \"\(tensor)\" needs \(expected) bytes for its shape and dtype but declares \(declared)"
        case .tensorOutOfBounds(let tensor): "tensor \"\(tensor)\" lies outside the data section"
        case .tensorsOverlap(let tensor, let previous): "tensor \"\(tensor)\" overlaps tensor \"\(previous)\""
        case .tensorChecksumMismatch(let tensor, let stored, let computed):
            "tensor \"\(tensor)\" checksum mismatch (stored \(CRC32C.hex(stored)), computed \(CRC32C.hex(computed))): its data is corrupt"
        }
    }
}

/// The byte layout's constants.
public enum MoeckptLayout {
    public static let magic: [UInt8] = Array("MOECKPT\0".utf8)
    public static let majorVersion: UInt16 = 1
    public static let minorVersion: UInt16 = 0
    public static let preambleBytes = 32
    /// Bytes 0..<24 and the header are covered by the header checksum stored at 24..<28.
    public static let checksummedPreambleBytes = 24
    public static let dataAlignment = 4096
    public static let tensorAlignment = 64
    /// Headers above this are refused before they are read (1,000 tensors take about 150 KB).
    public static let maximumHeaderBytes = 100_000_000

    public static func alignUp(_ value: Int, _ alignment: Int) -> Int { (value + alignment - 1) / alignment * alignment }
}
