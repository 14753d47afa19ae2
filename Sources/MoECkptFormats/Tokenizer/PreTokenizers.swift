/// Byte-level BPE pre-tokenizers by their llama.cpp name (`tokenizer.ggml.pre`) and the `Split`
/// regexes that tokenizer.json spells them with. llama.cpp's converter recognises a tokenizer by
/// hashing the ids it gives for a test string, which only works for published vocabularies; the
/// regex names the same pre-tokenizer for any vocabulary. Regexes from transformers'
/// `GGUF_PRE_TOKENIZER_SPLITS` (the reverse table) and the tokenizer.json of DeepSeek-V3.
public enum PreTokenizers {
    /// `ByteLevel` with its own regex (GPT-2, GPT-NeoX, OLMoE): llama.cpp's `gpt-2` regex.
    public static let byteLevelRegex = "gpt-2"

    /// (llama.cpp name, the `Split` regexes before `ByteLevel`), first name for each regex list.
    public static let splits: [(name: String, regexes: [String])] = [
        (
            "llama-bpe",
            [
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            ]
        ),
        (
            "qwen2",
            [#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#]
        ),
        (
            "qwen35",
            [
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            ]
        ),
        (
            "gpt-4o",
            [
                #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#
                    + #"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#
                    + #"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            ]
        ),
        (
            "tekken",
            [
                #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"#
                    + #"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"#
                    + #"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            ]
        ),
        (
            // DeepSeek-V3's tokenizer.json: digits, then CJK and kana, then words (real CR/LF characters).
            "deepseek-v3",
            [
                #"\p{N}{1,3}"#, "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
                "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
                    + "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
            ]
        ),
    ]

    /// The llama.cpp name of a tokenizer.json `pre_tokenizer`; nil when llama.cpp has none for it.
    public static func name(of preTokenizer: JSONValue?) -> String? {
        guard case .object(let object)? = preTokenizer, case .string(let type)? = object["type"] else { return nil }
        if type == "ByteLevel" { return object["use_regex"] == .bool(false) ? nil : byteLevelRegex }
        guard type == "Sequence", case .array(let steps)? = object["pretokenizers"] else { return nil }
        var regexes: [String] = []
        for (index, step) in steps.enumerated() {
            guard case .object(let step) = step, case .string(let type)? = step["type"] else { return nil }
            if type == "ByteLevel", index == steps.count - 1, step["use_regex"] == .bool(false) { continue }
            guard type == "Split", case .object(let pattern)? = step["pattern"], case .string(let regex)? = pattern["Regex"],
                step["behavior"] == .string("Isolated"), step["invert"] != .bool(true)
            else { return nil }
            regexes.append(regex)
        }
        return splits.first { $0.regexes == regexes }?.name
    }

    /// The `Split` regex transformers gives a GGUF's `tokenizer.ggml.pre` (its single-regex names).
    public static func regex(named name: String) -> String? {
        let aliases = [
            "llama3": "llama-bpe", "llama-v3": "llama-bpe", "falcon3": "llama-bpe", "falcon-h1": "llama-bpe",
            "pixtral": "llama-bpe", "midm-2.0": "llama-bpe", "lfm2": "llama-bpe", "jina-v5-nano": "llama-bpe",
            "dbrx": "llama-bpe", "smaug-bpe": "llama-bpe", "deepseek-r1-qwen": "qwen2", "kormo": "qwen2", "f2llmv2": "qwen2",
            "megrez": "qwen2", "llama4": "gpt-4o", "kanana2": "gpt-4o", "talkie": "gpt-4o", "minimax-m2": "gpt-4o",
        ]
        let canonical = aliases[name] ?? name
        guard let entry = splits.first(where: { $0.name == canonical }), entry.regexes.count == 1 else { return nil }
        return entry.regexes[0]
    }
}
