import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// The files written beside the weights, as the next tool expects them (issue 17).
struct EcosystemTests {
    static let mixtral = Fixtures.path("models/tiny-mixtral")

    static func object(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: fileBytes(path)) as! [String: Any]
    }

    /// The source config.json (written by transformers' save_pretrained) passes through: byte for
    /// byte when nothing changes, with only `dtype` changed by `--dtype`, with the keys mlx-lm
    /// reads added for `--names mlx`.
    @Test func theSourceConfigPassesThroughWithOnlyWhatTheOutputChanges() throws {
        let dir = try TemporaryDirectory()
        let source = Self.mixtral + "/config.json"
        _ = try Converter.convert(Self.mixtral, to: dir.file("hf"), options: ConvertOptions(names: "hf"))
        #expect(try fileBytes(dir.file("hf/config.json")) == (try fileBytes(source)))

        var expected = try Self.object(source)
        expected["dtype"] = "bfloat16"
        for (names, path) in [(LayoutKey?.none, "bf16"), ("hf-fused", "bf16-fused")] {
            _ = try Converter.convert(Self.mixtral, to: dir.file(path), options: ConvertOptions(dtype: .bf16, names: names))
            #expect(NSDictionary(dictionary: try Self.object(dir.file(path + "/config.json"))) == NSDictionary(dictionary: expected))
        }

        _ = try Converter.convert(Self.mixtral, to: dir.file("mlx"), options: ConvertOptions(names: "mlx"))
        var mlx = try Self.object(source)
        mlx["rope_theta"] = 1_000_000.0  // mlx-lm reads it at the top level, not in rope_parameters
        #expect(NSDictionary(dictionary: try Self.object(dir.file("mlx/config.json"))) == NSDictionary(dictionary: mlx))
    }

    /// A GGUF input has no config.json: moeckpt's description, with the dtype of its weights.
    @Test func aGGUFInputsConfigSaysItsDType() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(
            Fixtures.path("gguf/tiny-mixtral"), to: dir.file("hf"), options: ConvertOptions(dtype: .bf16, names: "hf"))
        #expect(try Self.object(dir.file("hf/config.json"))["dtype"] as? String == "bfloat16")
    }

    /// mistral-inference loads `output.weight` strictly and ignores `tied_embeddings`: a tied model
    /// goes to the Mistral layout with its embedding written as the head too, and still verifies
    /// against transformers. mlx-lm's Mixtral derives head_dim and has no sliding window: a model
    /// with either is refused for `--names mlx`, saying why.
    @Test func layoutsGetWhatTheirReadersLoad() throws {
        let dir = try TemporaryDirectory()
        let variant = Fixtures.path("models/tiny-mixtral-variant")  // tied, head_dim 8 of hidden 16 / 4 heads, window 4
        _ = try Converter.convert(variant, to: dir.file("mistral"), options: ConvertOptions(names: "mistral"))
        let file = try Checkpoint.open(dir.file("mistral/consolidated.safetensors"))
        let (head, embedding) = (
            try #require(file.tensor(named: "output.weight")), try #require(file.tensor(named: "tok_embeddings.weight"))
        )
        #expect(Array(head.bytes) == Array(embedding.bytes))
        #expect(try Self.object(dir.file("mistral/params.json"))["tied_embeddings"] == nil)
        #expect(try Verifier.verify(dir.file("mistral"), expected: variant + "/expected.safetensors").passed)

        #expect {
            _ = try Converter.convert(variant, to: dir.file("mlx"), options: ConvertOptions(names: "mlx"))
        } throws: { "\($0)".contains("head_dim 8") && "\($0)".contains("sliding_window 4") }
    }

    /// BF16 in HDF5 carries a `dtype` attribute: h5py reads the custom float as float32, and
    /// only the attribute tells a reader it is bf16.
    @Test func bf16InHDF5SaysSo() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Self.mixtral, to: dir.file("model.h5"), options: ConvertOptions(dtype: .bf16))
        let file = try Checkpoint.open(dir.file("model.h5"))
        let marked = Set(file.attributes.filter { $0.name == "dtype" && $0.value == "BF16" }.map(\.object))
        #expect(file.tensors.allSatisfy { $0.dtype == .bf16 } && marked.count == file.tensors.count)
    }

    /// Missing parent directories are created, as save_pretrained creates them; a conversion
    /// that fails leaves none behind.
    @Test func missingParentDirectoriesAreCreatedAndRemovedOnFailure() throws {
        let dir = try TemporaryDirectory()
        let result = try Converter.convert(Self.mixtral, to: dir.file("a/b/model.safetensors"))
        #expect(result.tensors > 0 && FileManager.default.fileExists(atPath: dir.file("a/b/model.safetensors")))
        let abandoned = try AtomicOutput(destination: dir.file("c/d/out.safetensors"), isDirectory: false)
        #expect(FileManager.default.fileExists(atPath: dir.file("c/d")))
        abandoned.abandon()
        #expect(!FileManager.default.fileExists(atPath: dir.file("c")))
        try Data().write(to: URL(fileURLWithPath: dir.file("file")))
        #expect {
            _ = try Converter.convert(Self.mixtral, to: dir.file("file/x/out.safetensors"))
        } throws: { "\($0)".contains("is not a directory") }
    }
}
