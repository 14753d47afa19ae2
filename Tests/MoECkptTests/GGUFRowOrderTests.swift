import MoECkpt
import MoECkptForward
import MoECkptKernels
import MoECkptModels
import MoECkptTestSupport
import Testing

@testable import MoECkptArchitectures

/// GGUF stores a llama-style model's query and key rows in another order (llama.cpp's converter
/// permutes them for its rotary layout); moeckpt puts them back by gathering the rows. BF16 rows
/// gathered stay BF16: read as the other weights are (half the bytes of an fp32 copy), and in
/// `--arithmetic ggml` multiplied as llama.cpp multiplies them.
struct GGUFRowOrderTests {
    @Test func gatheredQueryAndKeyRowsKeepTheirDType() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(
            Fixtures.path("models/tiny-mixtral"), to: dir.file("bf16"), options: ConvertOptions(dtype: .bf16, names: "hf"))
        _ = try Converter.convert(dir.file("bf16"), to: dir.file("bf16.gguf"))
        let model = try ModelLoader.load(dir.file("bf16.gguf"))
        #expect(try #require(model.tensor("layers.0.attn.q")).rope.pieces.count > 1)
        let forward = try #require(try model.architecture.forwardPass(model) as? DecoderForward)
        #expect(!forward.layers.isEmpty)
        for layer in forward.layers {
            #expect(layer.q.weight.type == .bf16 && layer.k?.weight.type == .bf16 && layer.o.weight.type == .bf16)
        }
    }
}
