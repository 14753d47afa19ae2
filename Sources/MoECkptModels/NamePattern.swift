/// A tensor-name template such as `model.layers.{bid}.block_sparse_moe.experts.{xid}.w1.weight`,
/// where `{bid}` is a layer (block) index and `{xid}` an expert index, as in gguf-py's
/// tensor_mapping.
public struct NamePattern: Sendable, Hashable {
    public let template: String
    private let pieces: [Piece]

    private enum Piece: Sendable, Hashable { case literal(String), block, expert }

    public init(_ template: String) {
        self.template = template
        var pieces: [Piece] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            if open > rest.startIndex { pieces.append(.literal(String(rest[..<open]))) }
            pieces.append(rest[open...close] == "{bid}" ? .block : .expert)
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        self.pieces = pieces
    }

    /// The indices a name carries, if it matches.
    public struct Match: Equatable, Sendable {
        public var block: Int?
        public var expert: Int?
    }

    public func match(_ name: String) -> Match? {
        var rest = Substring(name)
        var result = Match()
        for piece in pieces {
            switch piece {
            case .literal(let text):
                guard rest.hasPrefix(text) else { return nil }
                rest = rest.dropFirst(text.count)
            case .block, .expert:
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty, digits.count <= 9, let value = Int(digits) else { return nil }
                if case .block = piece { result.block = value } else { result.expert = value }
                rest = rest.dropFirst(digits.count)
            }
        }
        return rest.isEmpty ? result : nil
    }

    /// The name for given indices.
    public func name(block: Int? = nil, expert: Int? = nil) -> String {
        pieces.map { piece in
            switch piece {
            case .literal(let text): text
            case .block: String(block ?? 0)
            case .expert: String(expert ?? 0)
            }
        }.joined()
    }
}
