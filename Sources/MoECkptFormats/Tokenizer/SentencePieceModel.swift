/// The pieces of a SentencePiece model file (`tokenizer.model`, the `ModelProto` protobuf of
/// sentencepiece_model.proto): field 1, repeated `SentencePiece { string piece = 1; float score = 2;
/// Type type = 3; }`. Everything else (trainer and normalizer specs) is skipped by wire type. The
/// reader is strict: a varint longer than 10 bytes, a length past the end, a wire type protobuf
/// does not have, or a piece that is not UTF-8 is an error, never a read out of bounds.
public struct SentencePieceModel: Sendable, Equatable {
    /// sentencepiece's `SentencePiece.Type`.
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        public var type: PieceType

        public init(text: String, score: Float, type: PieceType) { (self.text, self.score, self.type) = (text, score, type) }
    }

    public var pieces: [Piece] = []

    public init(_ bytes: UnsafeRawBufferPointer) throws(SentencePieceError) {
        var reader = ProtobufReader(bytes: bytes, start: 0, end: bytes.count)
        while let (field, wireType) = try reader.key() {
            if field == 1, wireType == 2 {
                let range = try reader.lengthDelimited()
                pieces.append(try Self.piece(ProtobufReader(bytes: bytes, start: range.lowerBound, end: range.upperBound)))
            } else {
                try reader.skip(wireType)
            }
        }
    }

    static func piece(_ message: ProtobufReader) throws(SentencePieceError) -> Piece {
        var reader = message
        var piece = Piece(text: "", score: 0, type: .normal)
        while let (field, wireType) = try reader.key() {
            switch (field, wireType) {
            case (1, 2):
                let range = try reader.lengthDelimited()
                guard let text = String(validating: reader.bytes[range], as: UTF8.self) else { throw .notUTF8 }
                piece.text = text
            case (2, 5): piece.score = Float(bitPattern: try reader.fixed32())
            case (3, 0):
                let raw = try reader.varint()
                guard raw <= 6, let type = PieceType(rawValue: Int(raw)) else { throw .unknownPieceType(raw) }
                piece.type = type
            default: try reader.skip(wireType)
            }
        }
        return piece
    }
}

public enum SentencePieceError: Error, CustomStringConvertible, Equatable, Sendable {
    case truncated
    case varintTooLong
    case wireType(UInt64)
    case notUTF8
    case unknownPieceType(UInt64)

    public var description: String {
        switch self {
        case .truncated: "the SentencePiece model ends inside a field"
        case .varintTooLong: "the SentencePiece model has a varint longer than 10 bytes"
        case .wireType(let type): "the SentencePiece model has protobuf wire type \(type), which does not exist"
        case .notUTF8: "a SentencePiece piece is not UTF-8"
        case .unknownPieceType(let type): "a SentencePiece piece has type \(type), which sentencepiece does not have"
        }
    }
}

/// Protobuf's wire format over a byte range, bounds checked.
struct ProtobufReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int

    init(bytes: UnsafeRawBufferPointer, start: Int, end: Int) { (self.bytes, position, self.end) = (bytes, start, end) }

    mutating func varint() throws(SentencePieceError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard position < end else { throw .truncated }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        throw .varintTooLong
    }

    /// The next field's number and wire type; nil at the end.
    mutating func key() throws(SentencePieceError) -> (field: UInt64, wireType: UInt64)? {
        guard position < end else { return nil }
        let key = try varint()
        return (key >> 3, key & 7)
    }

    mutating func lengthDelimited() throws(SentencePieceError) -> Range<Int> {
        let length = try varint()
        guard length <= UInt64(end - position) else { throw .truncated }
        let range = position..<(position + Int(length))
        position = range.upperBound
        return range
    }

    mutating func fixed32() throws(SentencePieceError) -> UInt32 {
        guard end - position >= 4 else { throw .truncated }
        let value = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
        position += 4
        return value
    }

    mutating func skip(_ wireType: UInt64) throws(SentencePieceError) {
        switch wireType {
        case 0: _ = try varint()
        case 1:
            guard end - position >= 8 else { throw .truncated }
            position += 8
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw .wireType(wireType)
        }
    }
}
