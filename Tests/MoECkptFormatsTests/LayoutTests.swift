import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// Mixtral in every layout loads to the same canonical model, and conversions between layouts are exact.
struct LayoutTests {
    static let layouts = ["hf", "hf-sharded", "hf-fused", "mistral", "gguf", "mlx"]

    static func canonicalBytes(_ path: String) throws -> [String: [UInt8]] {
        let model = try ModelLoader.load(path)
        return Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.rope.copyBytes()) })
    }

    @Test(arguments: layouts)
    func everyLayoutLoadsToTheSameCanonicalModel(layout: String) throws {
        let reference = try Self.canonicalBytes(Fixtures.path("models/tiny-mixtral"))
        let model = try ModelLoader.load(Fixtures.path("models/layouts/" + layout))
        #expect(model.layout.key.rawValue == (layout == "hf-sharded" ? "hf" : layout))
        guard var expected = try ModelLoader.load(Fixtures.path("models/tiny-mixtral")).architecture as? MixtralConfig,
            let actual = model.architecture as? MixtralConfig
        else { Issue.record("not mixtral"); return }
        // params.json as Mistral writes it has no context length.
        if layout == "mistral" { expected.maxPositionEmbeddings = actual.maxPositionEmbeddings }
        #expect(actual == expected)
        #expect(try Self.canonicalBytes(Fixtures.path("models/layouts/" + layout)) == reference)
    }

    /// Converting the Hugging Face checkpoint into a layout reproduces the file made from the
    /// original tools' conventions (scripts/make_model_fixtures.py), tensor for tensor.
    @Test(arguments: ["hf-fused", "mistral", "gguf", "mlx"])
    func convertingIntoALayoutMatchesThatLayoutsFixture(layout: String) throws {
        let dir = try TemporaryDirectory()
        let out = dir.file(layout)
        _ = try Converter.convert(Fixtures.path("models/layouts/hf"), to: out, options: ConvertOptions(names: LayoutKey(rawValue: layout)))
        let ours = try ModelDirectory.open(out), theirs = try ModelDirectory.open(Fixtures.path("models/layouts/" + layout))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for tensor in theirs.tensors {
            let mine = try #require(ours.tensor(named: tensor.name))
            #expect(mine.shape == tensor.shape && Array(mine.bytes) == Array(tensor.bytes), "\(tensor.name)")
        }
        // And back to Hugging Face names: the original file, byte for byte.
        let back = dir.file("back")
        _ = try Converter.convert(out, to: back, options: ConvertOptions(names: "hf"))
        #expect(try fileBytes(back + "/model.safetensors") == fileBytes(Fixtures.path("models/layouts/hf/model.safetensors")))
    }

    @Test func theDescriptionFileFollowsTheLayout() throws {
        let dir = try TemporaryDirectory()
        for layout in ["mistral", "gguf", "hf"] {
            _ = try Converter.convert(
                Fixtures.path("models/tiny-mixtral-variant"), to: dir.file(layout),
                options: ConvertOptions(names: LayoutKey(rawValue: layout)))
        }
        #expect(FileManager.default.fileExists(atPath: dir.file("mistral/params.json")))
        #expect(FileManager.default.fileExists(atPath: dir.file("mistral/consolidated.safetensors")))
        let gguf = try ModelDirectory.open(dir.file("gguf"))
        #expect(gguf.metadata["llama.attention.sliding_window"] == "4" && gguf.tensor(named: "output.weight") == nil)
        // Every description reads back to the same architecture; the Mistral layout's untied (its
        // head written out as a copy of the embedding, which mistral-inference loads).
        let original = try ModelLoader.load(Fixtures.path("models/tiny-mixtral-variant")).architecture
        for layout in ["gguf", "hf"] {
            #expect(try ModelLoader.load(dir.file(layout)).architecture.isSame(as: original), "\(layout)")
        }
        var untied = try #require((original as? any DecoderArchitecture)?.decoder)
        untied.tieWordEmbeddings = false
        #expect((try ModelLoader.load(dir.file("mistral")).architecture as? any DecoderArchitecture)?.decoder == untied)
    }

    @Test func seedModulesRefuseMixtralLayouts() throws {
        let dir = try TemporaryDirectory()
        #expect {
            _ = try Converter.convert(Fixtures.path("models/basic_moe"), to: dir.file("out"), options: ConvertOptions(names: "gguf"))
        } throws: { error in
            (error as? FileError)?.problem as? ModelLoadError == .layoutNotForArchitecture(layout: "gguf", modelType: "basic_moe")
        }
        #expect(dir.contents().isEmpty)
    }

    @Test(arguments: ["mixture_of_experts", "switch_transformer", "mixtral_block", "basic_moe", "sparse_moe", "sparse_moe_shared"])
    func everySeedModuleLoadsAndRoundTripsItsNames(name: String) throws {
        let model = try ModelLoader.load(Fixtures.path("models/" + name))
        let source = try ModelDirectory.open(Fixtures.path("models/\(name)/model.safetensors"))
        let exported = try LayoutMapper.export(model.tensors, architecture: model.architecture, layout: model.layout)
        #expect(exported.count == source.tensors.count)
        for tensor in exported {
            #expect(tensor.rope.copyBytes() == Array(try #require(source.tensor(named: tensor.name)).bytes), "\(tensor.name)")
        }
    }
}

/// Every mismatch between a checkpoint and its description, reported together.
struct LoadProblemTests {
    /// A copy of tiny-mixtral with its tensors edited and its config replaced.
    static func checkpoint(
        dropping: Set<String> = [], adding: [String: [Int]] = [:], reshaping: [String: [Int]] = [:],
        config: ((inout [String: Any]) -> Void)? = nil, in dir: TemporaryDirectory
    ) throws -> String {
        let source = try ModelDirectory.open(Fixtures.path("models/tiny-mixtral"))
        var tensors: [TensorToWrite] = source.tensors.filter { !dropping.contains($0.name) }.map { tensor in
            let shape = reshaping[tensor.name] ?? tensor.shape
            let count = shape.reduce(4, *)
            return TensorToWrite(name: tensor.name, dtype: .f32, shape: shape, byteCount: count) { (file: any ByteSink) throws(FileError) in
                try file.write([UInt8](repeating: 0, count: count))
            }
        }
        for (name, shape) in adding {
            let count = shape.reduce(4, *)
            tensors.append(
                TensorToWrite(name: name, dtype: .f32, shape: shape, byteCount: count) { (file: any ByteSink) throws(FileError) in
                    try file.write([UInt8](repeating: 0, count: count))
                })
        }
        let file = try OutputFile(creating: dir.file("model.safetensors"))
        try SafetensorsWriter.write(tensors, metadata: [:], to: file)
        try file.close()
        var json = try JSONSerialization.jsonObject(with: fileBytes(Fixtures.path("models/tiny-mixtral/config.json"))) as! [String: Any]
        config?(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir.file("config.json")))
        return dir.path
    }

    static func problems(_ path: String) -> [String] {
        do {
            _ = try ModelLoader.load(path)
            return []
        } catch {
            guard case .problems(let list)? = error.problem as? ModelLoadError else { return ["\(error)"] }
            return list
        }
    }

    @Test func missingUnexpectedAndMisshapenTensorsAreAllReported() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.checkpoint(
            dropping: ["model.layers.1.block_sparse_moe.experts.2.w3.weight", "lm_head.weight"],
            adding: ["model.layers.0.mystery.weight": [3]],
            reshaping: ["model.layers.0.self_attn.q_proj.weight": [16, 15]], in: dir)
        #expect(
            Set(Self.problems(path)) == [
                "missing tensor lm_head.weight",
                "model.layers.0.self_attn.q_proj.weight has shape [16, 15], expected [16, 16]",
                "missing tensor model.layers.1.block_sparse_moe.experts.2.w3.weight",
                "unexpected tensor model.layers.0.mystery.weight",
            ])
    }

    @Test func configInconsistenciesAndAnEmbeddingOfTheWrongWidth() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.checkpoint(
            config: { config in
                config["num_experts_per_tok"] = 5
                config["num_key_value_heads"] = 3
                config["hidden_size"] = 12
            }, in: dir)
        let problems = Self.problems(path)
        #expect(problems.contains("experts per token (5) exceed the experts (4)"))
        #expect(problems.contains("attention heads (4) are not divisible by key/value heads (3)"))
        #expect(problems.contains("model.embed_tokens.weight has shape [64, 16], expected [64, 12]"))
    }

    @Test func aTiedModelMustNotCarryAnLMHead() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.checkpoint(config: { $0["tie_word_embeddings"] = true }, in: dir)
        #expect(Self.problems(path) == ["unexpected tensor lm_head.weight"])
    }

    @Test func aMissingDescriptionIsNamed() throws {
        #expect {
            _ = try ModelLoader.load(Fixtures.path("safetensors/single_meta.safetensors"))
        } throws: { error in
            (error as? FileError)?.problem as? ModelConfigError == .noDescription
        }
    }
}

/// Storages that stand in for file bytes (dequantized weights, re-arranged layouts) keep their
/// bytes when a streaming writer releases what it has read: the next tensor may share a page.
struct StandInStorageTests {
    @Test func releasingPartOfAPrivateCopyKeepsEveryByte() {
        let bytes = (0..<3 * 4096).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
        let copy = bytes.withUnsafeBytes { FileMapping(copying: $0, path: "copy") }
        copy.release(0..<8192)
        #expect(Array(copy.bytes) == bytes)
    }

    @Test func aDerivedTensorIsComputedOnFirstReadAndAgainAfterRelease() throws {
        let source = [UInt8](0..<16).withUnsafeBytes { FileMapping(copying: $0, path: "source") }
        let derived = DerivedStorage(
            name: "reversed", byteCount: 16, sources: [ByteRope([BytePiece(storage: source, offset: 0, count: 16)])]
        ) {
            inputs, out in
            for i in 0..<16 { out[i] = inputs[0][15 - i] }
        }
        try derived.load()
        #expect(Array(derived.bytes) == Array((0..<16).reversed()))
        derived.release(0..<16)
        #expect(derived.bytes.isEmpty)
        try derived.load()
        #expect(Array(derived.bytes) == Array((0..<16).reversed()))
    }
}
