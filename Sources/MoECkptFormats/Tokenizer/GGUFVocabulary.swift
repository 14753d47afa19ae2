/// A tokenizer as a GGUF file stores it: llama.cpp's `tokenizer.ggml.*` and `tokenizer.chat_template`
/// keys. Built from a Hugging Face tokenizer.json (`init(huggingFace:)`, as llama.cpp's converter
/// does) or from a GGUF file's key/values, and turned back into tokenizer.json
/// (`HuggingFaceTokenizer(gguf:)`, as transformers' GGUF loader does). docs/GGUF.md.
public struct GGUFVocabulary: Equatable, Sendable {
    /// `tokenizer.ggml.model`: the tokenization algorithm llama.cpp runs.
    public enum Model: String, Sendable {
        /// Byte-level BPE with merges (GPT-2, Llama 3, Qwen, DeepSeek, gpt-oss).
        case gpt2
        /// SentencePiece-style: `▁` for spaces, byte fallback, scores (Llama 2, Mistral, Mixtral).
        case llama
    }

    /// llama.cpp's `llama_token_type` (gguf-py's `TokenType`).
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The special tokens gguf-py's `SpecialVocab` writes, in its order.
    public enum SpecialToken: String, CaseIterable, Sendable {
        case bos, eos, unk, sep, pad, cls, mask, eot, eom

        /// The id's key, as gguf-py spells it (`seperator` included); `cls` has none.
        var idKey: String? {
            switch self {
            case .unk: "tokenizer.ggml.unknown_token_id"
            case .sep: "tokenizer.ggml.seperator_token_id"
            case .pad: "tokenizer.ggml.padding_token_id"
            case .cls: nil
            default: "tokenizer.ggml.\(rawValue)_token_id"
            }
        }

        /// The `add_*_token` flag's key: gguf-py's writer has one for bos, eos and sep only.
        var addKey: String? {
            switch self {
            case .bos, .eos, .sep: "tokenizer.ggml.add_\(rawValue)_token"
            default: nil
            }
        }
    }

    public var model: Model
    /// `tokenizer.ggml.pre`: the pre-tokenizer's name in llama.cpp (`PreTokenizers`).
    public var pre: String
    public var tokens: [String]
    public var tokenTypes: [TokenType]
    /// SentencePiece scores (`llama` only).
    public var scores: [Float]?
    /// Merges as `"left right"` (`gpt2`), spaces inside a part written as U+0120.
    public var merges: [String]?
    public var specialTokenIDs: [(SpecialToken, UInt32)] = []
    public var addSpecialToken: [(SpecialToken, Bool)] = []
    public var addSpacePrefix: Bool?
    public var normalizerLowercase: Bool?
    public var normalizerStripAccents: Bool?
    public var chatTemplate: String?

    public init(model: Model, pre: String, tokens: [String], tokenTypes: [TokenType]) {
        (self.model, self.pre, self.tokens, self.tokenTypes) = (model, pre, tokens, tokenTypes)
    }

    public static func == (a: GGUFVocabulary, b: GGUFVocabulary) -> Bool {
        a.keyValues.elementsEqual(b.keyValues) { $0.key == $1.key && $0.value == $1.value }
    }

    public func id(of special: SpecialToken) -> UInt32? { specialTokenIDs.first { $0.0 == special }?.1 }
    public func adds(_ special: SpecialToken) -> Bool? { addSpecialToken.first { $0.0 == special }?.1 }

    /// The key/values, typed and ordered as llama.cpp's converter writes them.
    public var keyValues: [(key: String, value: GGUFValue)] {
        var out: [(key: String, value: GGUFValue)] = []
        if let addSpacePrefix { out.append(("tokenizer.ggml.add_space_prefix", .bool(addSpacePrefix))) }
        out.append(("tokenizer.ggml.model", .string(model.rawValue)))
        out.append(("tokenizer.ggml.pre", .string(pre)))
        out.append(("tokenizer.ggml.tokens", .array(elementType: .string, tokens.map(GGUFValue.string))))
        if let scores { out.append(("tokenizer.ggml.scores", .array(elementType: .float32, scores.map(GGUFValue.float32)))) }
        out.append(("tokenizer.ggml.token_type", .array(elementType: .int32, tokenTypes.map { .int32($0.rawValue) })))
        if let merges, !merges.isEmpty {
            out.append(("tokenizer.ggml.merges", .array(elementType: .string, merges.map(GGUFValue.string))))
        }
        for (special, id) in specialTokenIDs { if let key = special.idKey { out.append((key, .uint32(id))) } }
        for (special, adds) in addSpecialToken { if let key = special.addKey { out.append((key, .bool(adds))) } }
        if let chatTemplate { out.append(("tokenizer.chat_template", .string(chatTemplate))) }
        if let normalizerLowercase { out.append(("tokenizer.ggml.normalizer.lowercase", .bool(normalizerLowercase))) }
        if let normalizerStripAccents {
            out.append(("tokenizer.ggml.normalizer.strip_accents", .bool(normalizerStripAccents)))
        }
        return out
    }

    /// The vocabulary a GGUF file's key/values describe; nil when it has none (`tokenizer.ggml.model`
    /// absent or `none`) or one this mapping does not cover.
    public init?(keyValues: [(key: String, value: GGUFValue)]) throws(GGUFVocabularyError) {
        var values: [String: GGUFValue] = [:]
        for (key, value) in keyValues where key.hasPrefix("tokenizer.") { values[key] = value }
        guard case .string(let name)? = values["tokenizer.ggml.model"], name != "none" else { return nil }
        guard let model = Model(rawValue: name) else { throw .unsupportedModel(name) }
        func strings(_ key: String) throws(GGUFVocabularyError) -> [String]? {
            guard let value = values[key] else { return nil }
            guard case .array(.string, let items) = value else { throw .wrongType(key) }
            return items.map { if case .string(let text) = $0 { text } else { "" } }
        }
        guard let tokens = try strings("tokenizer.ggml.tokens") else { throw .missing("tokenizer.ggml.tokens") }
        var types: [TokenType] = []
        switch values["tokenizer.ggml.token_type"] {
        case nil: types = Array(repeating: .normal, count: tokens.count)
        case .array(_, let items)?:
            for item in items {
                guard let raw = item.integer, let type = TokenType(rawValue: Int32(clamping: raw)) else {
                    throw .wrongType("tokenizer.ggml.token_type")
                }
                types.append(type)
            }
        default: throw .wrongType("tokenizer.ggml.token_type")
        }
        guard types.count == tokens.count else { throw .countMismatch("tokenizer.ggml.token_type", types.count, tokens.count) }
        let pre: String
        switch values["tokenizer.ggml.pre"] {
        case .string(let text)?: pre = text
        case nil: pre = "default"
        default: throw .wrongType("tokenizer.ggml.pre")
        }
        self.init(model: model, pre: pre, tokens: tokens, tokenTypes: types)
        if let value = values["tokenizer.ggml.scores"] {
            guard case .array(_, let items) = value else { throw .wrongType("tokenizer.ggml.scores") }
            scores = items.map { if case .float32(let x) = $0 { x } else { -1000 } }
            guard scores!.count == tokens.count else { throw .countMismatch("tokenizer.ggml.scores", scores!.count, tokens.count) }
        }
        merges = try strings("tokenizer.ggml.merges")
        for special in SpecialToken.allCases {
            if let key = special.idKey, let value = values[key] {
                guard let id = value.integer, id >= 0, id < tokens.count else { throw .badTokenID(key) }
                specialTokenIDs.append((special, UInt32(id)))
            }
            if let key = special.addKey, let value = values[key] {
                guard case .bool(let adds) = value else { throw .wrongType(key) }
                addSpecialToken.append((special, adds))
            }
        }
        if case .bool(let flag)? = values["tokenizer.ggml.add_space_prefix"] { addSpacePrefix = flag }
        if case .string(let text)? = values["tokenizer.chat_template"] { chatTemplate = text }
    }
}

public enum GGUFVocabularyError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedModel(String)
    case missing(String)
    case wrongType(String)
    case countMismatch(String, Int, Int)
    case badTokenID(String)

    public var description: String {
        switch self {
        case .unsupportedModel(let name):
            "tokenizer.ggml.model \"\(name)\" cannot be turned into a tokenizer.json (gpt2 and llama can)"
        case .missing(let key): "the tokenizer has no \(key)"
        case .wrongType(let key): "\(key) has the wrong type"
        case .countMismatch(let key, let count, let tokens): "\(key) has \(count) entries for \(tokens) tokens"
        case .badTokenID(let key): "\(key) is not the id of a token"
        }
    }
}
