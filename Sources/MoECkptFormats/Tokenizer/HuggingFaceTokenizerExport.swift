extension GGUFVocabulary {
    /// tokenizer.json, tokenizer_config.json and chat_template.jinja for this vocabulary, as
    /// transformers builds a tokenizer from a GGUF file (`integrations/gguf/gguf_tokenizer_mapping.py`,
    /// transformers 5.23): `GPT2Tokenizer` for `gpt2` with the pre-tokenizer's split regex,
    /// `LlamaTokenizer` for `llama` with merges recovered from the scores when the file has none.
    /// Two departures, where the file says more than transformers reads: `add_space_prefix` false
    /// drops the prefix space, and `deepseek-v3` gets its three split regexes.
    public var huggingFaceFiles: [(name: String, text: String)] {
        var files = [
            ("tokenizer.json", JSONValue.object(tokenizerJSON).serialized + "\n"),
            ("tokenizer_config.json", JSONValue.object(tokenizerConfig).serialized(.memberPerLine) + "\n"),
        ]
        if let chatTemplate { files.append(("chat_template.jinja", chatTemplate)) }
        return files
    }

    var addsBOS: Bool { adds(.bos) ?? (model == .llama) }
    var addsEOS: Bool { adds(.eos) ?? false }
    var prependsSpace: Bool { addSpacePrefix ?? true }

    func token(_ special: SpecialToken) -> String? { id(of: special).map { tokens[Int($0)] } }

    var tokenizerConfig: JSONObject {
        var entries: [(String, JSONValue)] = []
        if let flag = adds(.bos) { entries.append(("add_bos_token", .bool(flag))) }
        if let flag = adds(.eos) { entries.append(("add_eos_token", .bool(flag))) }
        for (key, special) in [("bos_token", SpecialToken.bos), ("eos_token", .eos), ("pad_token", .pad), ("unk_token", .unk)] {
            entries.append((key, token(special).map(JSONValue.string) ?? .null))
        }
        entries.append(("tokenizer_class", .string("PreTrainedTokenizerFast")))
        return JSONObject(entries)
    }

    var tokenizerJSON: JSONObject {
        let vocabulary = model == .gpt2 ? tokens.map(ByteLevelAlphabet.spelled) : tokens
        var index: [String: Int] = [:]
        for (id, token) in vocabulary.enumerated() { index[token] = id }
        let vocab = JSONObject(index.sorted { $0.value < $1.value }.map { ($0.key, JSONValue.integer($0.value)) })
        let pairs: [(String, String)]
        if let merges {
            pairs = merges.compactMap { merge in
                let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
                return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
            }
        } else {
            pairs = Self.mergesFromScores(tokens: vocabulary, scores: scores ?? Array(repeating: 0, count: tokens.count))
        }
        let isByteLevel = model == .gpt2
        let bpe = JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null),
            ("continuing_subword_prefix", isByteLevel ? .string("") : .null),
            ("end_of_word_suffix", isByteLevel ? .string("") : .null), ("fuse_unk", .bool(!isByteLevel)),
            ("byte_fallback", .bool(!isByteLevel)), ("ignore_merges", .bool(false)), ("vocab", .object(vocab)),
            ("merges", .array(pairs.map { .array([.string($0.0), .string($0.1)]) })),
        ])
        return JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null),
            ("added_tokens", .array(addedTokens(index).map(JSONValue.object))), ("normalizer", .null),
            ("pre_tokenizer", isByteLevel ? byteLevelPreTokenizer : metaspace), ("post_processor", postProcessor),
            ("decoder", isByteLevel ? Self.byteLevelDecoder : sentencePieceDecoder), ("model", .object(bpe)),
        ])
    }

    /// Control tokens as special added tokens, user-defined ones as plain added tokens, and the
    /// named special tokens; by id. In a byte-level vocabulary a control token spelled outside the
    /// byte alphabet is a mislabel, and left alone.
    func addedTokens(_ index: [String: Int]) -> [JSONObject] {
        var added: [String: Bool] = [:]
        for (token, type) in zip(tokens, tokenTypes) {
            switch type {
            case .control where model != .gpt2 || ByteLevelAlphabet.isSpelled(token): added[token] = true
            case .userDefined where index[token] != nil: if added[token] == nil { added[token] = false }
            default: break
            }
        }
        for special in [SpecialToken.bos, .eos, .unk, .pad] { if let token = token(special) { added[token] = true } }
        return added.compactMap { token, special in index[token].map { (token, $0, special) } }
            .sorted { $0.1 < $1.1 }
            .map { token, id, special in
                JSONObject([
                    ("id", .integer(id)), ("content", .string(token)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                    ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(special)),
                ])
            }
    }

    /// transformers' `update_post_processor`: BOS and EOS around each sequence when added.
    var postProcessor: JSONValue {
        let bos = addsBOS ? token(.bos) : nil, eos = addsEOS ? token(.eos) : nil
        func piece(_ kind: String, _ id: String, _ typeID: Int) -> JSONValue {
            .object(JSONObject([(kind, .object(JSONObject([("id", .string(id)), ("type_id", .integer(typeID))])))]))
        }
        var single: [JSONValue] = [], pair: [JSONValue] = []
        if let bos { single.append(piece("SpecialToken", bos, 0)) }
        single.append(piece("Sequence", "A", 0))
        if let eos { single.append(piece("SpecialToken", eos, 0)) }
        pair = single
        if let bos { pair.append(piece("SpecialToken", bos, 1)) }
        pair.append(piece("Sequence", "B", 1))
        if let eos { pair.append(piece("SpecialToken", eos, 1)) }
        var specials: [String: Int] = [:]
        if let bos, let id = id(of: .bos) { specials[bos] = Int(id) }
        if let eos, let id = id(of: .eos) { specials[eos] = Int(id) }
        let specialTokens = JSONObject(
            specials.sorted { $0.key < $1.key }.map { token, id in
                (
                    token,
                    JSONValue.object(
                        JSONObject([("id", .string(token)), ("ids", .array([.integer(id)])), ("tokens", .array([.string(token)]))]))
                )
            })
        return .object(
            JSONObject([
                ("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
                ("special_tokens", .object(specialTokens)),
            ]))
    }

    var byteLevelPreTokenizer: JSONValue {
        let regexes: [String]
        if let regex = PreTokenizers.regex(named: pre) {
            regexes = [regex]
        } else if let entry = PreTokenizers.splits.first(where: { $0.name == pre }) {
            regexes = entry.regexes
        } else {
            return Self.byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: true)
        }
        let splits = regexes.map { regex in
            JSONValue.object(
                JSONObject([
                    ("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(regex))]))),
                    ("behavior", .string("Isolated")), ("invert", .bool(false)),
                ]))
        }
        return .object(
            JSONObject([
                ("type", .string("Sequence")),
                ("pretokenizers", .array(splits + [Self.byteLevel(addPrefixSpace: false, trimOffsets: true, useRegex: false)])),
            ]))
    }

    static let byteLevelDecoder = byteLevel(addPrefixSpace: true, trimOffsets: true, useRegex: true)

    static func byteLevel(addPrefixSpace: Bool, trimOffsets: Bool, useRegex: Bool) -> JSONValue {
        .object(
            JSONObject([
                ("type", .string("ByteLevel")), ("add_prefix_space", .bool(addPrefixSpace)), ("trim_offsets", .bool(trimOffsets)),
                ("use_regex", .bool(useRegex)),
            ]))
    }

    var metaspace: JSONValue {
        .object(
            JSONObject([
                ("type", .string("Metaspace")), ("replacement", .string("\u{2581}")),
                ("prepend_scheme", .string(prependsSpace ? "first" : "never")), ("split", .bool(false)),
            ]))
    }

    var sentencePieceDecoder: JSONValue {
        var steps: [JSONValue] = [
            .object(
                JSONObject([
                    ("type", .string("Replace")), ("pattern", .object(JSONObject([("String", .string("\u{2581}"))]))),
                    ("content", .string(" ")),
                ])),
            .object(JSONObject([("type", .string("ByteFallback"))])), .object(JSONObject([("type", .string("Fuse"))])),
        ]
        if prependsSpace {
            steps.append(
                .object(JSONObject([("type", .string("Strip")), ("content", .string(" ")), ("start", .integer(1)), ("stop", .integer(0))])))
        }
        return .object(JSONObject([("type", .string("Sequence")), ("decoders", .array(steps))]))
    }

    /// transformers' `generate_merges(vocab, vocab_scores)`: every split of a token into two tokens
    /// of the vocabulary, best score first, then longer left and right parts; ties in file order.
    public static func mergesFromScores(tokens: [String], scores: [Float]) -> [(String, String)] {
        var index: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { index[token] = id }
        var score: [String: Float] = [:], order: [String] = []
        for (token, value) in zip(tokens, scores) {
            if score[token] == nil { order.append(token) }
            score[token] = value
        }
        typealias Merge = (left: String, right: String, score: Float, leftLength: Int, rightLength: Int)
        var merges: [Merge] = []
        for token in order {
            let scalars = Array(token.unicodeScalars)
            guard scalars.count > 1 else { continue }
            var local: [(merge: Merge, left: Int, right: Int)] = []
            for cut in 1..<scalars.count {
                let left = String(String.UnicodeScalarView(scalars[..<cut])), right = String(String.UnicodeScalarView(scalars[cut...]))
                guard let l = index[left], let r = index[right] else { continue }
                local.append(((left, right, score[token]!, cut, scalars.count - cut), l, r))
            }
            // Stable: Python's sort keeps equal keys in order, so ties break on position.
            merges += local.enumerated().sorted {
                ($0.element.left, $0.element.right, $0.offset) < ($1.element.left, $1.element.right, $1.offset)
            }
            .map(\.element.merge)
        }
        return merges.enumerated()
            .sorted {
                let (a, b) = ($0.element, $1.element)
                if a.score != b.score { return a.score > b.score }
                if a.leftLength != b.leftLength { return a.leftLength > b.leftLength }
                if a.rightLength != b.rightLength { return a.rightLength > b.rightLength }
                return $0.offset < $1.offset
            }
            .map { ($0.element.left, $0.element.right) }
    }
}

/// GPT-2's byte-to-character table (`bytes_to_unicode`): printable Latin-1 bytes stand for
/// themselves, the others for U+0100 onwards, so every byte sequence is a string of "visible" characters.
enum ByteLevelAlphabet {
    static let characters: [Unicode.Scalar] = {
        let printable = Set(Array(UInt32(33)...126) + Array(UInt32(161)...172) + Array(UInt32(174)...255))
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in UInt32(0)...255 {
            if printable.contains(byte) {
                table[Int(byte)] = Unicode.Scalar(byte)!
            } else {
                table[Int(byte)] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()
    static let members = Set(characters)

    static func isSpelled(_ token: String) -> Bool { token.unicodeScalars.allSatisfy(members.contains) }

    /// The token as the byte-level vocabulary spells it (transformers' `byte_level_tokenizer`).
    static func spelled(_ token: String) -> String {
        if isSpelled(token) { return token }
        var out = String.UnicodeScalarView()
        for byte in token.utf8 { out.append(characters[Int(byte)]) }
        return String(out)
    }
}
