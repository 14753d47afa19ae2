import MoECkptTensors

/// A problem with one file: what the user sees is `path: problem`, on one line.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let problem: any Error & CustomStringConvertible & Sendable

    public init(path: String, problem: any Error & CustomStringConvertible & Sendable) {
        self.path = path
        self.problem = problem
    }

    /// One line, whatever the file said: names and values from files are escaped.
    public var description: String { TerminalText.escaped("\(path): \(problem)") }
}

/// Text from files made safe for a terminal: control characters (C0, DEL, C1) and the Unicode
/// format controls that reorder or hide text (bidirectional overrides and isolates, zero-width
/// marks) are shown as escapes, so a tensor name cannot break a line, forge a table row, move the
/// cursor or cut a message at a NUL.
public enum TerminalText {
    public static func escaped(_ text: String) -> String {
        // Printable ASCII, the common case, is checked byte by byte.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); continue }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x2069, 0xFEFF: true
        default: false
        }
    }
}

/// Operating-system failures, with the call that failed and errno's text.
public enum IOError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotOpen(String)
    case cannotRead(String)
    case cannotMap(String)
    case cannotWrite(String)
    case cannotRename(String)
    case notARegularFile
    case isADirectory
    case tooLarge(size: Int, limit: Int)
    case changedWhileReading

    public var description: String {
        switch self {
        case .cannotOpen(let why): "cannot open: \(why)"
        case .cannotRead(let why): "cannot read: \(why)"
        case .cannotMap(let why): "cannot map into memory: \(why)"
        case .cannotWrite(let why): "cannot write: \(why)"
        case .cannotRename(let why): "cannot move the finished file into place: \(why)"
        case .notARegularFile: "not a regular file"
        case .isADirectory: "is a directory"
        case .changedWhileReading: "changed while being read (truncated under its memory mapping)"
        case .tooLarge(let size, let limit): "is \(size) bytes, more than the \(limit) bytes such a file may have; refusing to read it"
        }
    }
}

/// Every rule a safetensors file or sharded checkpoint can break. Each case names one rule, and the
/// tensor or file it concerns.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    case fileTooSmall(size: Int)
    case headerTooLarge(length: UInt64, limit: Int)
    case headerLengthOutOfBounds(length: UInt64, fileSize: Int)
    case headerNotUTF8
    case headerNotJSON(String)
    case headerNotObject
    case duplicateKey(String)
    case malformedTensorEntry(tensor: String, reason: String)
    case unknownDtype(tensor: String, dtype: String)
    case invalidShape(tensor: String, reason: String)
    case offsetsReversed(tensor: String, begin: Int, end: Int)
    case byteLengthMismatch(tensor: String, expected: Int, actual: Int)
    case sizeOverflow(tensor: String)
    case subByteNotWholeBytes(tensor: String, elements: Int, bits: Int)
    case gapOrOverlap(tensor: String, begin: Int, expected: Int)
    case dataSectionMismatch(coveredByTensors: Int, dataSection: Int)
    case metadataNotStringMap(key: String)
    case gitLFSPointer
    case htmlPage
    case indexMalformed(String)
    case shardMissing(file: String)
    case tensorMissingFromShard(tensor: String, file: String)
    case tensorInTwoShards(tensor: String, first: String, second: String)
    case shardPathEscapes(file: String)
    case tensorNotInIndex(tensor: String, file: String)

    /// The rule's name, stable for tests and scripts (fixtures/malformed/EXPECTED.json uses it).
    public var identifier: String {
        switch self {
        case .fileTooSmall: "fileTooSmall"
        case .headerTooLarge: "headerTooLarge"
        case .headerLengthOutOfBounds: "headerLengthOutOfBounds"
        case .headerNotUTF8: "headerNotUTF8"
        case .headerNotJSON: "headerNotJSON"
        case .headerNotObject: "headerNotObject"
        case .duplicateKey: "duplicateKey"
        case .malformedTensorEntry: "malformedTensorEntry"
        case .unknownDtype: "unknownDtype"
        case .invalidShape: "invalidShape"
        case .offsetsReversed: "offsetsReversed"
        case .byteLengthMismatch: "byteLengthMismatch"
        case .sizeOverflow: "sizeOverflow"
        case .subByteNotWholeBytes: "subByteNotWholeBytes"
        case .gapOrOverlap: "gapOrOverlap"
        case .dataSectionMismatch: "dataSectionMismatch"
        case .metadataNotStringMap: "metadataNotStringMap"
        case .gitLFSPointer: "gitLFSPointer"
        case .htmlPage: "htmlPage"
        case .indexMalformed: "indexMalformed"
        case .shardMissing: "shardMissing"
        case .tensorMissingFromShard: "tensorMissingFromShard"
        case .tensorInTwoShards: "tensorInTwoShards"
        case .shardPathEscapes: "shardPathEscapes"
        case .tensorNotInIndex: "tensorNotInIndex"
        }
    }

    public var description: String {
        switch self {
        case .fileTooSmall(let size):
            "file is \(size) bytes, too small to be safetensors (it needs an 8-byte header length)"
        case .headerTooLarge(let length, let limit):
            "header length \(length) exceeds the limit of \(limit) bytes (corrupt file or not safetensors)"
        case .headerLengthOutOfBounds(let length, let fileSize):
            "header length \(length) runs past the end of the \(fileSize)-byte file (truncated or not safetensors)"
        case .headerNotUTF8: "header is not valid UTF-8"
        case .headerNotJSON(let why): "header is not valid JSON: \(why)"
        case .headerNotObject: "header is not a JSON object"
        case .duplicateKey(let key): "header names \"\(key)\" more than once"
        case .malformedTensorEntry(let tensor, let reason): "tensor \"\(tensor)\": \(reason)"
        case .unknownDtype(let tensor, let dtype):
            "tensor \"\(tensor)\" has dtype \"\(dtype)\", which moeckpt does not know"
        case .invalidShape(let tensor, let reason): "tensor \"\(tensor)\" has an invalid shape: \(reason)"
        case .offsetsReversed(let tensor, let begin, let end):
            "tensor \"\(tensor)\" has data_offsets [\(begin), \(end)] that end before they begin"
        case .byteLengthMismatch(let tensor, let expected, let actual):
            "tensor \"\(tensor)\" needs \(expected) bytes for its shape and dtype but its data_offsets span \(actual)"
        case .sizeOverflow(let tensor): "tensor \"\(tensor)\" has a shape whose size overflows 64 bits"
        case .subByteNotWholeBytes(let tensor, let elements, let bits):
            "tensor \"\(tensor)\" has \(elements) elements of \(bits) bits, which do not fill whole bytes"
        case .gapOrOverlap(let tensor, let begin, let expected):
            "tensor \"\(tensor)\" starts at byte \(begin) of the data section but the previous tensor ends at \(expected) (tensors must be contiguous, without gaps or overlaps)"
        case .dataSectionMismatch(let covered, let dataSection):
            "tensors cover \(covered) bytes but the data section holds \(dataSection) (truncated file or trailing bytes)"
        case .metadataNotStringMap(let key): "__metadata__ value for \"\(key)\" is not a string"
        case .gitLFSPointer:
            "is a Git LFS pointer, not the checkpoint itself (run `git lfs pull` to fetch the weights)"
        case .htmlPage: "is an HTML page, not a checkpoint (a failed download?)"
        case .indexMalformed(let why): "index is malformed: \(why)"
        case .shardMissing(let file): "index names shard \"\(file)\", which does not exist"
        case .tensorMissingFromShard(let tensor, let file):
            "index places tensor \"\(tensor)\" in \"\(file)\", which does not contain it"
        case .tensorInTwoShards(let tensor, let first, let second):
            "tensor \"\(tensor)\" is stored in both \"\(first)\" and \"\(second)\""
        case .shardPathEscapes(let file):
            "index names shard \"\(file)\", which is not a plain file name in the index's directory"
        case .tensorNotInIndex(let tensor, let file):
            "shard \"\(file)\" holds tensor \"\(tensor)\", which the index does not list"
        }
    }
}
