import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// Tokenizers between tokenizer.json and GGUF, against the two reference implementations
/// (scripts/make_tokenizer_fixtures.py): llama.cpp's own converter for HF -> GGUF, transformers'
/// GGUF loader for GGUF -> HF. `llama-bpe` is a Mixtral with a SentencePiece-style tokenizer.json,
/// `byte-level` a Qwen3-MoE with a byte-level BPE, added control and user-defined tokens.
struct GGUFTokenizerTests {
    static let cases = ["llama-bpe", "byte-level", "sentencepiece"]

    static func tokenizerKeyValues(_ path: String) throws -> [(key: String, value: GGUFValue)] {
        try #require(try Checkpoint.open(path).gguf).keyValues.filter { $0.key.hasPrefix("tokenizer.") }
    }

    /// Every tokenizer key/value as llama.cpp's converter writes it (key, type, value, order), every
    /// tensor byte for byte, every model key the same.
    @Test(arguments: cases) func convertingWritesWhatLlamaCppsConverterWrites(name: String) throws {
        let dir = try TemporaryDirectory()
        let source = Fixtures.path("tokenizers/\(name)")
        let result = try Converter.convert(source, to: dir.file("model.gguf"))
        #expect(result.notes.isEmpty)
        let mine = try Self.tokenizerKeyValues(dir.file("model.gguf"))
        let reference = try Self.tokenizerKeyValues(source + "/converter.gguf")
        #expect(mine.map(\.key) == reference.map(\.key))
        for ((key, value), (_, expected)) in zip(mine, reference) { #expect(value == expected, "\(key)") }

        let written = try Checkpoint.open(dir.file("model.gguf")), converted = try Checkpoint.open(source + "/converter.gguf")
        #expect(Set(written.tensors.map(\.name)) == Set(converted.tensors.map(\.name)))
        for tensor in converted.tensors {
            let ours = try #require(written.tensor(named: tensor.name))
            #expect(ours.dtype == tensor.dtype && ours.shape == tensor.shape && Array(ours.bytes) == Array(tensor.bytes), "\(tensor.name)")
        }
        let theirs = try #require(converted.gguf).keyValues.filter { !$0.key.hasPrefix("tokenizer.") }
        let ours = Dictionary(try #require(written.gguf).keyValues.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        // general.name and general.size_label are the converter's guesses from the directory name.
        for (key, value) in theirs where key != "general.name" && key != "general.size_label" {
            #expect(ours[key] == value, "\(key)")
        }
    }

    /// A GGUF file's tokenizer becomes the tokenizer.json transformers builds from it (merges
    /// recovered from the scores for `llama`), with its special tokens and chat template.
    @Test(arguments: cases) func aGGUFTokenizerComesBackAsTransformersBuildsIt(name: String) throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("in"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: Fixtures.path("tokenizers/\(name)/converter.gguf"), toPath: dir.file("in/model.gguf"))
        _ = try Converter.convert(dir.file("in/model.gguf"), to: dir.file("hf"), options: ConvertOptions(names: "hf"))
        func json(_ path: String) throws -> JSONValue { try JSONParser.parse(String(decoding: try fileBytes(path), as: UTF8.self)) }
        let reference = Fixtures.path("tokenizers/\(name)/from-gguf")
        #expect(try json(dir.file("hf/tokenizer.json")) == (try json(reference + "/tokenizer.json")))
        guard case .object(let config) = try json(dir.file("hf/tokenizer_config.json")),
            case .object(let expected) = try json(reference + "/tokenizer_config.json")
        else { throw JSONError.notAnObject }
        for key in ["bos_token", "eos_token", "pad_token", "unk_token"] { #expect(config[key] == (expected[key] ?? .null), "\(key)") }
        #expect(
            try fileBytes(dir.file("hf/chat_template.jinja")) == (try fileBytes(Fixtures.path("tokenizers/\(name)/chat_template.jinja"))))
    }

    @Test(arguments: cases) func aVocabularyReadsBackFromItsKeyValues(name: String) throws {
        let files = try #require(try HuggingFaceTokenizerFiles.read(directory: Fixtures.path("tokenizers/\(name)")))
        let vocabulary = try GGUFVocabulary(huggingFace: files, rule: .llamaFirst)
        #expect(try GGUFVocabulary(keyValues: vocabulary.keyValues) == vocabulary)
    }

    /// Directory outputs carry the tokenizer files; a pre-tokenizer llama.cpp has no name for
    /// leaves the GGUF vocabulary-less, with a note; a malformed tokenizer.json is an error naming it.
    @Test func tokenizersTravelAndTheirProblemsAreNamed() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path("tokenizers/byte-level"), to: dir.file("copy"), options: ConvertOptions(dtype: .bf16))
        #expect(try fileBytes(dir.file("copy/tokenizer.json")) == (try fileBytes(Fixtures.path("tokenizers/byte-level/tokenizer.json"))))

        let model = dir.file("odd")
        try FileManager.default.copyItem(atPath: Fixtures.path("tokenizers/byte-level"), toPath: model)
        let text = String(decoding: try fileBytes(model + "/tokenizer.json"), as: UTF8.self)
        try Data(text.replacingOccurrences(of: #"|\\p{N}|"#, with: #"|\\p{N}{1,2}|"#).utf8).write(
            to: URL(fileURLWithPath: model + "/tokenizer.json"))
        let result = try Converter.convert(model, to: dir.file("odd.gguf"))
        #expect(result.notes.count == 1 && result.notes[0].contains("pre-tokenizer is not one llama.cpp names"))
        #expect(try Self.tokenizerKeyValues(dir.file("odd.gguf")).map(\.value) == [.string("none")])

        try Data("{\"model\": ".utf8).write(to: URL(fileURLWithPath: model + "/tokenizer.json"))
        #expect {
            _ = try Converter.convert(model, to: dir.file("bad.gguf"))
        } throws: { ($0 as? FileError)?.path == model + "/tokenizer.json" }
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad.gguf")))
    }

    /// SentencePiece's protobuf read strictly: every truncation of a real model is an error or a
    /// prefix of its pieces, never a crash; long varints and wire types protobuf lacks are refused.
    @Test func sentencePieceModelsAreReadStrictly() throws {
        let bytes = try fileBytes(Fixtures.path("tokenizers/sentencepiece/tokenizer.model"))
        let whole = try bytes.withUnsafeBytes { try SentencePieceModel($0) }
        // As the sentencepiece library reads it: <unk> <s> </s> <think> <0x00>..., piece 300 "ken" scoring -40.
        #expect(
            whole.pieces.count == 400 && whole.pieces[0].type == .unknown
                && whole.pieces[3] == .init(text: "<think>", score: 0, type: .userDefined))
        #expect(whole.pieces[4].type == .byte && whole.pieces[300] == .init(text: "ken", score: -40, type: .normal))
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            let prefix = bytes.prefix(cut)
            if let model = try? prefix.withUnsafeBytes({ try SentencePieceModel($0) }) {
                #expect(model.pieces.count <= whole.pieces.count)
            }
        }
        for (hostile, error) in [
            ([0x0A] + [UInt8](repeating: 0xFF, count: 11), SentencePieceError.varintTooLong), ([0x0B, 0x00], .wireType(3)),
            ([0x0A, 0x05, 0x0A, 0x09], .truncated), ([0x0A, 0x02, 0x18, 0x09], .unknownPieceType(9)),
        ] as [([UInt8], SentencePieceError)] {
            #expect(throws: error) { try hostile.withUnsafeBytes { try SentencePieceModel($0) } }
        }
    }

    /// transformers' `generate_merges`: splits into two known tokens, best score first, then longer
    /// left and right parts, ties in vocabulary order. Expected: transformers 5.23's `generate_merges`
    /// on the same vocabulary and scores.
    @Test func mergesFromScoresFollowTransformers() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"]
        let merges = GGUFVocabulary.mergesFromScores(tokens: tokens, scores: [0, 0, 0, -1, -2, -1])
        #expect(merges.map { "\($0.0) \($0.1)" } == ["ab c", "a bc", "a b", "b c"])
    }
}
