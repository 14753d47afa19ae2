import FuzzDriver
import MoECkpt

/// The tokenizer readers on arbitrary bytes: the first byte picks SentencePiece's protobuf
/// (`tokenizer.model`), or tokenizer.json taken by llama.cpp's converter rules and written back
/// as transformers builds it.
@_cdecl("FuzzTokenizer_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        guard let mode = bytes.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        if mode & 1 == 0 {
            _ = try? SentencePieceModel(rest)
        } else if case .object(let tokenizer)? = try? JSONParser.parse(rest) {
            let files = HuggingFaceTokenizerFiles(tokenizer: tokenizer)
            for rule in [GGUFVocabulary.ConverterRule.llamaFirst, .gpt2] {
                guard let vocabulary = try? GGUFVocabulary(huggingFace: files, rule: rule) else { continue }
                _ = vocabulary.huggingFaceFiles
                _ = try? GGUFVocabulary(keyValues: vocabulary.keyValues)
            }
        }
    }
}
