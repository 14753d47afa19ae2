/// A model directory's Hugging Face tokenizer files: tokenizer.json and/or SentencePiece's
/// tokenizer.model, tokenizer_config.json, added_tokens.json, the chat template transformers 5
/// writes beside them, and config.json's vocabulary size and token ids.
public struct HuggingFaceTokenizerFiles: Sendable {
    /// The files a tokenizer is made of; they travel with the weights to every directory output.
    public static let names = [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "chat_template.jinja", "chat_template.json",
    ]
    /// Real tokenizer.json files are up to ~30 MB (large vocabularies); larger is refused unread.
    public static let maximumBytes = 256 << 20

    public var tokenizer: JSONObject?
    public var sentencePiece: SentencePieceModel?
    public var addedTokens: JSONObject?
    public var config: JSONObject?
    /// chat_template.jinja's text.
    public var chatTemplateFile: String?
    /// chat_template.json's `chat_template`.
    public var chatTemplateJSON: JSONValue?
    public var modelConfig: JSONObject?

    public init(tokenizer: JSONObject?, config: JSONObject? = nil, modelConfig: JSONObject? = nil) {
        (self.tokenizer, self.config, self.modelConfig) = (tokenizer, config, modelConfig)
    }

    /// The tokenizer of the model in `directory`; nil when it has neither tokenizer.json nor tokenizer.model.
    public static func read(directory: String) throws(FileError) -> HuggingFaceTokenizerFiles? {
        func object(_ name: String) throws(FileError) -> JSONObject? {
            let path = FileSystem.join(directory, name)
            guard FileSystem.exists(path) else { return nil }
            let mapping = try FileMapping(path: path, maximumBytes: maximumBytes)
            do throws(JSONError) {
                guard case .object(let object) = try JSONParser.parse(mapping.bytes) else { throw .notAnObject }
                return object
            } catch { throw FileError(path: path, problem: error) }
        }
        let sentencePiecePath = FileSystem.join(directory, "tokenizer.model")
        let tokenizer = try object("tokenizer.json")
        guard tokenizer != nil || FileSystem.exists(sentencePiecePath) else { return nil }
        var files = HuggingFaceTokenizerFiles(
            tokenizer: tokenizer, config: try object("tokenizer_config.json"), modelConfig: try object("config.json"))
        files.addedTokens = try object("added_tokens.json")
        if FileSystem.exists(sentencePiecePath) {
            let mapping = try FileMapping(path: sentencePiecePath, maximumBytes: maximumBytes)
            do throws(SentencePieceError) { files.sentencePiece = try SentencePieceModel(mapping.bytes) } catch {
                throw FileError(path: sentencePiecePath, problem: error)
            }
        }
        let jinja = FileSystem.join(directory, "chat_template.jinja")
        if FileSystem.exists(jinja) {
            let mapping = try FileMapping(path: jinja, maximumBytes: maximumBytes)
            files.chatTemplateFile = String(decoding: mapping.bytes, as: UTF8.self)
        }
        files.chatTemplateJSON = try object("chat_template.json")?["chat_template"]
        return files
    }
}

public enum TokenizerImportError: Error, CustomStringConvertible, Equatable, Sendable {
    case noTokenizerJSON
    case notBPE(String)
    case unknownPreTokenizer
    case malformed(String)
    case tokenIDOutOfRange(id: Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case .noTokenizerJSON: "there is no tokenizer.json (and tokenizer.model is not what this architecture's converter reads)"
        case .notBPE(let type): "tokenizer.json's model is \(type), not BPE"
        case .unknownPreTokenizer: "tokenizer.json's pre-tokenizer is not one llama.cpp names"
        case .malformed(let what): "tokenizer.json: \(what)"
        case .tokenIDOutOfRange(let id, let size): "token id \(id) is outside the model's vocabulary of \(size)"
        }
    }
}

extension GGUFVocabulary {
    /// Which of llama.cpp's converter functions makes the vocabulary.
    public enum ConverterRule: Sendable {
        /// `LlamaModel.set_vocab` (Mixtral, GraniteMoE): tokenizer.model when there is one
        /// (`_set_vocab_sentencepiece`), else `LlamaHfVocab` for a SentencePiece-style
        /// tokenizer.json, else `_set_vocab_gpt2`.
        case llamaFirst
        /// `_set_vocab_gpt2` (Qwen, OLMoE, DeepSeek, gpt-oss).
        case gpt2

        /// The rule of the converter class for a GGUF architecture: GraniteMoE's class inherits
        /// `LlamaModel.set_vocab`.
        public init(architecture: String) {
            self = ["llama", "granitemoe"].contains(architecture) ? .llamaFirst : .gpt2
        }
    }

    /// The vocabulary llama.cpp's converter writes for these files (`convert_hf_to_gguf.py` with
    /// gguf-py's `LlamaHfVocab` and `SpecialVocab`, llama-cpp-python 0.3.36's llama.cpp).
    public init(huggingFace files: HuggingFaceTokenizerFiles, rule: ConverterRule) throws(TokenizerImportError) {
        if rule == .llamaFirst, let model = files.sentencePiece {
            self = try Self.sentencePiece(model, files)
        } else {
            guard let tokenizer = files.tokenizer else { throw .noTokenizerJSON }
            let reading = try TokenizerJSON(tokenizer)
            self = try rule == .llamaFirst && reading.isSentencePieceStyle ? Self.llamaHF(reading, files) : Self.byteLevel(reading, files)
        }
        guard rule == .llamaFirst else { return }
        // LlamaModel.set_vocab, whichever vocabulary it wrote: the prefix space from
        // tokenizer_config.json, and no BOS for Granite's small models (49152 tokens).
        if case .bool(let flag)? = files.config?["add_prefix_space"] { addSpacePrefix = flag }
        if files.modelConfig?["vocab_size"]?.nonNegativeInt == 49152 {
            addSpecialToken.removeAll { $0.0 == .bos }
            addSpecialToken.append((.bos, false))
        }
    }

    /// `_set_vocab_sentencepiece`: the model's pieces up to config.json's `vocab_size` (the rest
    /// `[PADn]`, UNUSED, -10000), added_tokens.json's and tokenizer_config.json's added tokens
    /// over them (-1000), scores as the model has them.
    static func sentencePiece(_ model: SentencePieceModel, _ files: HuggingFaceTokenizerFiles) throws(TokenizerImportError) -> Self {
        let size = files.modelConfig?["vocab_size"]?.nonNegativeInt ?? model.pieces.count
        var tokens = (0..<size).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: size)
        var types = [TokenType](repeating: .unused, count: size)
        for (id, piece) in model.pieces.prefix(size).enumerated() {
            tokens[id] = piece.text
            scores[id] = piece.score
            // The converter asks IsUnknown, IsControl, IsUnused, IsByte: a user-defined piece is NORMAL.
            types[id] =
                switch piece.type {
                case .unknown: .unknown
                case .control: .control
                case .unused: .unused
                case .byte: .byte
                case .normal, .userDefined: .normal
                }
        }
        for (token, value) in files.addedTokens?.entries ?? JSONObject().entries {
            guard let id = value.nonNegativeInt, id < size else { continue }
            (tokens[id], scores[id], types[id]) = (token, -1000, .userDefined)
        }
        if case .object(let decoder)? = files.config?["added_tokens_decoder"] {
            for (key, value) in decoder.entries {
                guard let id = Int(key), id >= 0, id < size, case .object(let data) = value, case .string(var token)? = data["content"]
                else { continue }
                if data["special"] == .bool(true) || looksSpecial(token) {
                    types[id] = .control
                } else {
                    token = token.replacing("\u{2581}", with: " ")
                    types[id] = .userDefined
                }
                (tokens[id], scores[id]) = (token, -1000)
            }
        }
        var vocabulary = GGUFVocabulary(model: .llama, pre: "default", tokens: tokens, tokenTypes: types)
        vocabulary.scores = scores
        // SpecialVocab still finds ids among tokenizer.json's added tokens.
        try vocabulary.addSpecialVocabulary(files, files.tokenizer.flatMap { try? TokenizerJSON($0) }, vocabularySize: tokens.count)
        return vocabulary
    }

    /// `_set_vocab_gpt2` with `get_vocab_base`: ids up to config.json's `vocab_size`, gaps as `[PADn]`.
    static func byteLevel(_ reading: TokenizerJSON, _ files: HuggingFaceTokenizerFiles) throws(TokenizerImportError) -> Self {
        guard let pre = PreTokenizers.name(of: files.tokenizer?["pre_tokenizer"]) else { throw .unknownPreTokenizer }
        let size = files.modelConfig?["vocab_size"]?.nonNegativeInt ?? reading.fullVocabulary.count
        if let largest = reading.fullVocabulary.values.max(), largest >= size {
            throw .tokenIDOutOfRange(id: largest, vocabularySize: size)
        }
        let byID = reading.tokensByID
        var tokens: [String] = [], types: [TokenType] = []
        for id in 0..<size {
            guard var token = byID[id] else {
                tokens.append("[PAD\(id)]")
                types.append(.unused)
                continue
            }
            if let added = reading.added[token] {
                let special = reading.addedByID[id]?.special ?? added.special
                if special || looksSpecial(token) {
                    types.append(.control)
                } else {
                    token = token.replacing("\u{2581}", with: " ")  // pre-normalised user-defined spaces
                    types.append(.userDefined)
                }
            } else {
                types.append(.normal)
            }
            tokens.append(token)
        }
        var vocabulary = GGUFVocabulary(model: .gpt2, pre: pre, tokens: tokens, tokenTypes: types)
        vocabulary.merges = try reading.merges()
        try vocabulary.addSpecialVocabulary(files, reading, vocabularySize: nil)
        return vocabulary
    }

    /// gguf-py's `LlamaHfVocab`: the model's vocabulary, then the added tokens beyond it; scores -1000.
    static func llamaHF(_ reading: TokenizerJSON, _ files: HuggingFaceTokenizerFiles) throws(TokenizerImportError) -> Self {
        let baseSize = reading.modelVocabulary.count
        let specials = reading.specialTokenNames(files.config).compactMap { reading.fullVocabulary[$0] }
        let byID = reading.tokensByID
        var tokens: [String] = [], types: [TokenType] = []
        for id in 0..<baseSize {
            guard let token = byID[id] else { throw .malformed("the vocabulary has no token \(id)") }
            tokens.append(token)
            types.append(isByteToken(token) ? .byte : specials.contains(id) ? .control : .normal)
        }
        for (id, token) in reading.addedByID.sorted(by: { $0.key < $1.key }) where id >= baseSize {
            tokens.append(token.content)
            types.append(specials.contains(id) ? .control : .userDefined)
        }
        var vocabulary = GGUFVocabulary(model: .llama, pre: "default", tokens: tokens, tokenTypes: types)
        vocabulary.scores = Array(repeating: -1000, count: tokens.count)
        try vocabulary.addSpecialVocabulary(files, reading, vocabularySize: tokens.count)
        return vocabulary
    }

    /// `<0x0A>`: SentencePiece's byte-fallback tokens.
    static func isByteToken(_ token: String) -> Bool {
        let bytes = Array(token.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "<"), bytes[1] == UInt8(ascii: "0"), bytes[2] == UInt8(ascii: "x"),
            bytes[5] == UInt8(ascii: ">")
        else { return false }
        let hexDigits = Set("0123456789abcdefABCDEF".utf8)
        return hexDigits.contains(bytes[3]) && hexDigits.contains(bytes[4])
    }

    /// The converter's `does_token_look_special`: added tokens some models forget to mark special.
    static func looksSpecial(_ token: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token)
            || (token.hasPrefix("<|") && token.hasSuffix("|>")) || (token.hasPrefix("<\u{FF5C}") && token.hasSuffix("\u{FF5C}>"))
            || (token.hasPrefix("<unused") && token.hasSuffix(">"))
    }

    /// gguf-py's `SpecialVocab`: special token ids and `add_*_token` flags from tokenizer.json's post
    /// processor, tokenizer_config.json and config.json (first found wins), the chat template and the
    /// normalizer's flags.
    mutating func addSpecialVocabulary(
        _ files: HuggingFaceTokenizerFiles, _ reading: TokenizerJSON?, vocabularySize: Int?
    ) throws(TokenizerImportError) {
        if let normalizer = files.tokenizer?["normalizer"] { readNormalizerFlags(normalizer) }
        var names: [SpecialToken: String] = [:]
        var types: [SpecialToken] = [.bos, .eos, .unk, .sep, .pad, .cls, .mask]
        let config = files.config
        for special in types {
            if let name = TokenizerJSON.tokenName(config?["\(special.rawValue)_token"]) { names[special] = name }
        }
        if names[.bos] == nil, let cls = names[.cls], config != nil { names[.bos] = cls }
        if names[.eos] == nil, let sep = names[.sep], config != nil { names[.eos] = sep }
        func setAdd(_ special: SpecialToken, _ value: Bool, overriding: Bool) {
            if let index = addSpecialToken.firstIndex(where: { $0.0 == special }) {
                if overriding { addSpecialToken[index].1 = value }
            } else {
                addSpecialToken.append((special, value))
            }
        }
        if case .object(let processor)? = files.tokenizer?["post_processor"] {
            var processors = [processor]
            if case .array(let list)? = processor["processors"] {
                processors = list.compactMap { if case .object(let o) = $0 { o } else { nil } }
            }
            for processor in processors {
                switch processor["type"] {
                case .string("ByteLevel")?:
                    setAdd(.bos, false, overriding: false)
                    setAdd(.eos, false, overriding: false)
                case .string("TemplateProcessing")?:
                    for (special, adds) in Self.readTemplate(processor, names: &names, types: &types, hasConfig: config != nil) {
                        setAdd(special, adds, overriding: true)
                    }
                default: break
                }
            }
        }
        guard let config, !config.keys.isEmpty else { return }
        switch config["chat_template"] {
        case .string(let text)?: chatTemplate = text
        case nil:
            if let file = files.chatTemplateFile {
                chatTemplate = file
            } else if case .string(let text)? = files.chatTemplateJSON {
                chatTemplate = text
            }
        default: break  // the list form (named templates) is not carried
        }
        func setID(_ special: SpecialToken, _ id: Int?) {
            guard let id, specialTokenIDs.allSatisfy({ $0.0 != special }) else { return }
            if let vocabularySize, id >= vocabularySize { return }
            specialTokenIDs.append((special, UInt32(clamping: id)))
        }
        for special in types {
            if case .bool(let flag)? = config["add_\(special.rawValue)_token"] { setAdd(special, flag, overriding: false) }
            // Only an added token's id is looked up, as gguf-py does.
            if let name = names[special] { setID(special, reading?.addedTokens.first { $0.content == name }?.id) }
        }
        if let modelConfig = files.modelConfig {
            for special in types { setID(special, modelConfig["\(special.rawValue)_token_id"]?.nonNegativeInt) }
        }
    }

    /// SpecialVocab's reading of a `TemplateProcessing`: BOS/EOS added when the single template
    /// starts/ends with them; SEP when the pair template puts one between A and B.
    static func readTemplate(
        _ processor: JSONObject, names: inout [SpecialToken: String], types: inout [SpecialToken], hasConfig: Bool
    ) -> [(SpecialToken, Bool)] {
        var adds: [(SpecialToken, Bool)] = []
        func items(_ key: String) -> [JSONObject] {
            guard case .array(let list)? = processor[key] else { return [] }
            return list.compactMap { if case .object(let o) = $0 { o } else { nil } }
        }
        func special(_ item: JSONObject?) -> String? {
            guard case .object(let token)? = item?["SpecialToken"], case .string(let id)? = token["id"], !id.isEmpty else { return nil }
            return id
        }
        func sequence(_ item: JSONObject?) -> String? {
            guard case .object(let token)? = item?["Sequence"], case .string(let id)? = token["id"] else { return nil }
            return id
        }
        let single = items("single"), pair = items("pair")
        var first: String?, last: String?
        if single.count > 1 {
            if let token = special(single.first) {
                first = token
                if !hasConfig {
                    names[.bos] = token
                } else if token != names[.bos], token != names[.cls] {
                    if names[.bos] == nil { names[.bos] = token }
                    if names[.cls] == nil { names[.cls] = token }
                }
                adds.append((.bos, token == names[.bos] || token == names[.cls]))
            }
            if let token = special(single.last) {
                last = token
                if !hasConfig {
                    names[.eos] = token
                } else if token != names[.eos] {
                    // The old EOS becomes EOT (or EOM), as SpecialVocab keeps it.
                    let spare: SpecialToken? = !types.contains(.eot) ? .eot : !types.contains(.eom) ? .eom : nil
                    if let spare { types.append(spare); names[spare] = names[.eos] }
                    names[.eos] = token
                }
                adds.append((.eos, true))
            }
        }
        guard !pair.isEmpty else { return adds }
        let start = first != nil && special(pair.first) == first ? 1 : 0
        let stop = last != nil && special(pair.last) == last ? pair.count - 1 : pair.count
        guard start < stop else { return adds }
        let middle = pair[start..<stop]
        guard sequence(middle.first) == "A", sequence(middle.last) == "B", middle.count > 2 else { return adds }
        let between = Array(middle.dropFirst().dropLast())
        var addSep = false
        if let entry = special(between.first), entry == names[.sep] || entry == names[.eos], last == nil { addSep = true }
        if between.count == 2, let entry = special(between[1]), entry == names[.sep] || entry == names[.eos] { addSep = true }
        adds.append((.sep, addSep))
        if addSep, names[.sep] == nil, hasConfig { names[.sep] = names[.eos] }
        return adds
    }

    mutating func readNormalizerFlags(_ normalizer: JSONValue) {
        guard case .object(let object) = normalizer else { return }
        switch object["type"] {
        case .string("Lowercase")?: normalizerLowercase = true
        case .string("StripAccents")?: normalizerStripAccents = true
        case .string("BertNormalizer")?:
            if case .bool(let flag)? = object["lowercase"] { normalizerLowercase = flag }
            if case .bool(let flag)? = object["strip_accents"] { normalizerStripAccents = flag }
        case .string("Sequence")?:
            if case .array(let list)? = object["normalizers"] { for item in list { readNormalizerFlags(item) } }
        default: break
        }
    }
}

/// What llama.cpp's converter reads from tokenizer.json.
struct TokenizerJSON {
    struct AddedToken {
        var id: Int
        var content: String
        var special: Bool
    }

    var modelVocabulary: [String: Int] = [:]
    var addedTokens: [AddedToken] = []
    var model: JSONObject
    var decoderType: String?
    /// `tokenizer.get_vocab()`: the model's vocabulary and the added tokens.
    private(set) var fullVocabulary: [String: Int] = [:]
    private(set) var tokensByID: [Int: String] = [:]
    /// The added tokens by content and by id (the first of each).
    private(set) var added: [String: AddedToken] = [:]
    private(set) var addedByID: [Int: AddedToken] = [:]

    init(_ tokenizer: JSONObject) throws(TokenizerImportError) {
        guard case .object(let model)? = tokenizer["model"] else { throw .malformed("no model") }
        self.model = model
        guard case .string(let type)? = model["type"] else { throw .malformed("the model has no type") }
        guard type == "BPE" else { throw .notBPE(type) }
        guard case .object(let vocab)? = model["vocab"] else { throw .malformed("the model has no vocab") }
        for (token, value) in vocab.entries {
            guard let id = value.nonNegativeInt, id < Int(Int32.max) else { throw .malformed("the id of a token is not an integer") }
            modelVocabulary[token] = id
        }
        if case .array(let list)? = tokenizer["added_tokens"] {
            for item in list {
                guard case .object(let token) = item, let id = token["id"]?.nonNegativeInt, id < Int(Int32.max),
                    case .string(let content)? = token["content"]
                else { throw .malformed("an added token without an id or content") }
                addedTokens.append(AddedToken(id: id, content: content, special: token["special"] == .bool(true)))
            }
        }
        if case .object(let decoder)? = tokenizer["decoder"], case .string(let type)? = decoder["type"] { decoderType = type }
        // Looked up per token: built once.
        fullVocabulary = modelVocabulary
        for (token, id) in modelVocabulary { tokensByID[id] = token }
        for token in addedTokens {
            fullVocabulary[token.content] = token.id
            tokensByID[token.id] = token.content
            if added[token.content] == nil { added[token.content] = token }
            if addedByID[token.id] == nil { addedByID[token.id] = token }
        }
    }

    /// gguf-py's test for `LlamaHfVocab`: BPE with byte fallback and a `Sequence` decoder.
    var isSentencePieceStyle: Bool { model["byte_fallback"] == .bool(true) && decoderType == "Sequence" }

    /// SpecialVocab's merges: strings as they are; pairs joined by a space, spaces inside written U+0120.
    func merges() throws(TokenizerImportError) -> [String] {
        guard case .array(let list)? = model["merges"] else { return [] }
        var merges: [String] = []
        merges.reserveCapacity(list.count)
        for item in list {
            switch item {
            case .string(let text): merges.append(text)
            case .array(let pair) where pair.count == 2:
                guard case .string(let left) = pair[0], case .string(let right) = pair[1] else {
                    throw .malformed("a merge is not two strings")
                }
                let spaced = { (part: String) in part.replacing(" ", with: "\u{0120}") }
                merges.append(spaced(left) + " " + spaced(right))
            default: throw .malformed("a merge is not a string or a pair")
            }
        }
        return merges
    }

    /// transformers' `all_special_tokens`: the named special tokens, then the extra ones.
    func specialTokenNames(_ config: JSONObject?) -> [String] {
        var names: [String] = []
        for special in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] {
            if let name = Self.tokenName(config?["\(special)_token"]) { names.append(name) }
        }
        for key in ["extra_special_tokens", "additional_special_tokens"] {
            if case .array(let list)? = config?[key] { names += list.compactMap(Self.tokenName) }
        }
        return names
    }

    /// A special token in tokenizer_config.json: a string or `{"content": ...}`.
    static func tokenName(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text
        case .object(let object)?: if case .string(let text)? = object["content"] { text } else { nil }
        default: nil
        }
    }
}
