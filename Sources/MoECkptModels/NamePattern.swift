/// A tensor-name template such as `model.layers.{bid}.block_sparse_moe.experts.{xid}.w1.weight`,
/// where `{bid}` is a layer (block) index and `{xid}` an expert index, as in gguf-py's
/// tensor_mapping.
public struct NamePattern: Sendable, Hashable {
    public let template: String
    private let pieces: [Piece]

    /// Literals as UTF-8 bytes: names are matched byte by byte (inspecting a header of 1.4 million
    /// tensors matches every name against every layout's patterns).
    private enum Piece: Sendable, Hashable { case literal([UInt8]), block, expert }

    public init(_ template: String) {
        self.template = template
        var pieces: [Piece] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            if open > rest.startIndex { pieces.append(.literal(Array(rest[..<open].utf8))) }
            pieces.append(rest[open...close] == "{bid}" ? .block : .expert)
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.literal(Array(rest.utf8))) }
        self.pieces = pieces
    }

    /// The literal bytes every matching name starts with (empty when the template starts with an index).
    public var leadingLiteral: [UInt8] {
        if case .literal(let text)? = pieces.first { return text }
        return []
    }

    /// The indices a name carries, if it matches.
    public struct Match: Equatable, Sendable {
        public var block: Int?
        public var expert: Int?
    }

    public func match(_ name: String) -> Match? {
        if let result = name.utf8.withContiguousStorageIfAvailable({ match($0) }) { return result }
        return Array(name.utf8).withUnsafeBufferPointer { match($0) }
    }

    private func match(_ bytes: UnsafeBufferPointer<UInt8>) -> Match? {
        var position = 0
        var result = Match()
        for piece in pieces {
            switch piece {
            case .literal(let text):
                guard bytes.count - position >= text.count else { return nil }
                for byte in text {
                    guard bytes[position] == byte else { return nil }
                    position += 1
                }
            case .block, .expert:
                var value = 0, digits = 0
                while position < bytes.count, (48...57).contains(bytes[position]), digits < 10 {
                    value = value * 10 + Int(bytes[position] - 48)
                    position += 1
                    digits += 1
                }
                guard digits > 0, digits <= 9 else { return nil }
                if case .block = piece { result.block = value } else { result.expert = value }
            }
        }
        return position == bytes.count ? result : nil
    }

    /// The name for given indices.
    public func name(block: Int? = nil, expert: Int? = nil) -> String {
        pieces.map { piece in
            switch piece {
            case .literal(let text): String(decoding: text, as: UTF8.self)
            case .block: String(block ?? 0)
            case .expert: String(expert ?? 0)
            }
        }.joined()
    }
}
