import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt
@testable import MoECkptForward

#if canImport(Glibc)
import Glibc
#endif

/// The families beyond Mixtral (fixtures/models/families, made with transformers by
/// scripts/make_family_fixtures.py): each verifies, and goes through every layout of its family
/// and back unchanged.
struct FamilyTests {
    static let cases: [String] = {
        let root = Fixtures.path("models/families")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: root + "/" + $0 + "/expected.safetensors") }
            .sorted()
    }()

    @Test func theFixturesAreThere() {
        for family in ["qwen2_moe", "qwen3_moe", "olmoe", "granitemoe", "granitemoeshared", "deepseek_v3", "gpt_oss"] {
            #expect(Self.cases.contains { $0.hasPrefix(family) }, "\(family)")
        }
    }

    @Test(arguments: cases)
    func everyFamilyVerifiesAgainstTransformers(name: String) throws {
        let report = try Verifier.verify(Fixtures.path("models/families/" + name), options: RunOptions(threads: 2))
        #expect(report.passed, "\(Verifier.render(report))")
        #expect(report.comparisons.contains { $0.name == "logits" })
    }

    /// Into every layout of the family, then back into the fixture's own: the same file.
    @Test(arguments: cases)
    func everyLayoutRoundTripsExactly(name: String) throws {
        let fixture = Fixtures.path("models/families/" + name)
        let model = try ModelLoader.load(fixture)
        let original = try ModelDirectory.open(fixture)
        let dir = try TemporaryDirectory()
        for layout in model.architecture.layouts where layout.key != .canonical {
            let out = dir.file(layout.key.rawValue), back = dir.file(layout.key.rawValue + "-back")
            // A layout whose tool has no place for something this model needs is refused, saying what.
            let lost = model.architecture.unexpressible(in: layout.key)
            if !lost.isEmpty {
                do {
                    _ = try Converter.convert(fixture, to: out, options: ConvertOptions(names: layout.key))
                    Issue.record("\(layout.key) was written")
                } catch {
                    let expected = ModelLoadError.layoutCannotExpress(
                        layout: layout.key, modelType: model.architecture.modelType, lost: lost)
                    #expect(error.problem as? ModelLoadError == expected)
                }
                #expect(!FileManager.default.fileExists(atPath: out))
                continue
            }
            _ = try Converter.convert(fixture, to: out, options: ConvertOptions(names: layout.key))
            // Its description (config.json, or llama.cpp's keys) reads back to a model that computes the same.
            let written = try ModelLoader.load(out)
            #expect(written.layout.key == layout.key)
            #expect(
                (written.architecture as? any DecoderArchitecture)?.decoder == (model.architecture as? any DecoderArchitecture)?.decoder,
                "\(layout.key)")
            // Quantized weights (FP8 blocks, MXFP4) come out dequantized: the output computes the same, in F32.
            if original.tensors.contains(where: { $0.name.hasSuffix("_scale_inv") || $0.name.hasSuffix("_blocks") }) {
                #expect(try Verifier.verify(out, expected: fixture + "/expected.safetensors", options: RunOptions(threads: 1)).passed)
                continue
            }
            _ = try Converter.convert(out, to: back, options: ConvertOptions(names: model.layout.key))
            let returned = try ModelDirectory.open(back)
            #expect(Set(returned.tensors.map(\.name)) == Set(original.tensors.map(\.name)), "\(layout.key)")
            for tensor in original.tensors {
                let mine = try #require(returned.tensor(named: tensor.name))
                #expect(
                    mine.dtype == tensor.dtype && mine.shape == tensor.shape && Array(mine.bytes) == Array(tensor.bytes), "\(tensor.name)")
            }
        }
        // And through the native format: the canonical model, back to the layout it came from.
        let native = dir.file("model.moeckpt")
        _ = try Converter.convert(fixture, to: native)
        let report = try Verifier.verify(native, expected: fixture + "/expected.safetensors", options: RunOptions(threads: 1))
        #expect(report.passed)
    }
}

/// `torch.topk`'s choice among ties (fixtures/topk/ties.safetensors, made with torch).
struct TorchTopKTests {
    @Test func indicesAreTorchsForEveryShapeAndTiePattern() throws {
        let file = try Checkpoint.open(Fixtures.path("topk/ties.safetensors"))
        var checked = 0
        for values in file.tensors where values.name.hasPrefix("values.") {
            let suffix = values.name.dropFirst("values.".count)
            let indices = try #require(file.tensor(named: "indices." + suffix))
            let (rows, n, k) = (values.shape[0], values.shape[1], indices.shape[1])
            let v = try values.load(), ix = try indices.load()
            for r in 0..<rows {
                let row = (0..<n).map { v.loadUnaligned(fromByteOffset: 4 * (r * n + $0), as: Float.self) }
                let expected = (0..<k).map { Int(ix.loadUnaligned(fromByteOffset: 8 * (r * k + $0), as: Int64.self)) }
                #expect(TorchTopK.indices(row, k: k) == expected, "\(values.name) row \(r)")
                checked += 1
            }
        }
        #expect(checked > 50)
    }

    /// The selection a scalar reference makes: the k largest values, whichever tie torch picks.
    @Test func theChosenValuesAreAlwaysTheLargest() {
        var generator = SeededGenerator(seed: 9)
        for n in [4, 8, 60, 64, 128, 256, 300] {
            for k in [1, 2, 4, 8] where k <= n {
                let row = (0..<n).map { _ in Float(Int.random(in: 0..<5, using: &generator)) }
                let chosen = TorchTopK.indices(row, k: k)
                #expect(Set(chosen).count == k)
                let threshold = row.sorted(by: >)[k - 1]
                #expect(chosen.allSatisfy { row[$0] >= threshold })
                #expect(zip(chosen, chosen.dropFirst()).allSatisfy { row[$0] >= row[$1] }, "sorted descending")
            }
        }
    }
}

/// The names and keys of the `gguf` layout, against gguf-py's tables (fixtures/gguf/names.json,
/// scripts/make_gguf_name_table.py): what moeckpt writes is what llama.cpp's converter would.
struct GGUFNameTests {
    struct Table: Decodable {
        struct Architecture: Decodable {
            let tensors: [String]
            let keys: [String]
        }

        let general: [String]
        let architectures: [String: Architecture]
    }

    static let cases = ["models/tiny-mixtral"] + FamilyTests.cases.map { "models/families/" + $0 }

    @Test(arguments: cases)
    func everyWrittenNameAndKeyIsGGUFs(fixture: String) throws {
        let model = try ModelLoader.load(Fixtures.path(fixture))
        // Families with a GGUF layout, models it can express.
        guard model.architecture.layouts.contains(where: { $0.key == "gguf" }), model.architecture.unexpressible(in: "gguf").isEmpty
        else { return }
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path(fixture), to: dir.file("gguf"), options: ConvertOptions(names: "gguf"))
        try Self.expectGGUFNamesAndKeys(dir.file("gguf"), fixture: fixture)
    }

    static func expectGGUFNamesAndKeys(_ path: String, fixture: String) throws {
        let table = try JSONDecoder().decode(Table.self, from: try fileBytes(Fixtures.path("gguf/names.json")))
        let written = try ModelDirectory.open(path)
        let architecture = try #require(written.metadata["general.architecture"])
        let allowed = try #require(table.architectures[architecture], "\(architecture)")
        for tensor in written.tensors {
            // blk.3.attn_q.weight -> blk.{bid}.attn_q
            var parts = tensor.name.split(separator: ".").map(String.init)
            if parts.first == "blk", parts.count > 1 { parts[1] = "{bid}" }
            let stem = parts.dropLast().joined(separator: ".")
            #expect(allowed.tensors.contains(stem) && ["weight", "bias"].contains(parts.last), "\(fixture): \(tensor.name)")
        }
        for key in written.metadata.keys where key != "format" {
            #expect(table.general.contains(key) || allowed.keys.contains(key), "\(fixture): \(key)")
        }
    }
}

/// DeepSeek-V3's routing: sigmoid scores, a selection bias, groups (scalar cases worked by hand).
struct LimitedRoutingTests {
    @Test func theBiasChoosesTheExpertsAndTheUnbiasedScoresWeighThem() {
        // Scores 0.9, 0.8, 0.7, 0.6; the bias lifts expert 3 above experts 0 and 1.
        let logits: [Float] = [0.9, 0.8, 0.7, 0.6].map { logf($0 / (1 - $0)) }
        let semantics = RouterSemantics(scoring: .sigmoid, renormalize: true, scale: 2.5, selectionBias: true)
        let routing = Routing.route(logits, tokens: 1, experts: 4, k: 2, semantics: semantics, selectionBias: [0, 0, 0, 0.5])
        #expect(routing.tokens.map(\.count) == [1, 0, 0, 1])
        let (w0, w3) = (routing.weights[0][0], routing.weights[3][0])
        #expect(abs(w0 - 0.9 / 1.5 * 2.5) < 1e-6 && abs(w3 - 0.6 / 1.5 * 2.5) < 1e-6)
    }

    @Test func onlyTheBestGroupsCompete() {
        // Two groups of four: group 0's two best sum to 1.0, group 1's to 1.2, so with one group
        // used, expert 0 (the single best score) is not chosen.
        let scores: [Float] = [0.9, 0.1, 0.05, 0.0, 0.6, 0.6, 0.3, 0.2]
        let chosen = Routing.limitedChoice(scores, bias: nil, groups: .init(count: 2, used: 1), k: 2)
        #expect(Set(chosen) == [4, 5])
        let ungrouped = Routing.limitedChoice(scores, bias: nil, groups: nil, k: 2)
        #expect(Set(ungrouped).contains(0))
    }
}

/// DeepSeek-V3's router against transformers' `DeepseekV3TopkRouter` on tie-heavy rows
/// (fixtures/routers/deepseek_v3.safetensors, scripts/make_family_fixtures_2.py).
struct DeepSeekRouterTests {
    struct Case: Decodable {
        let C: Int
        let E: Int
        let n_group: Int
        let topk_group: Int
        let k: Int
        let norm_topk_prob: Bool
        let routed_scaling_factor: Double
    }

    @Test func expertsAndWeightsAreTransformers() throws {
        let file = try Checkpoint.open(Fixtures.path("routers/deepseek_v3.safetensors"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(try #require(file.metadata["configs"]).utf8))
        func floats(_ name: String) throws -> [Float] {
            let t = try #require(file.tensor(named: name))
            let b = try t.load()
            return (0..<t.elementCount).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
        var rows = 0
        for c in cases {
            let logits = try floats("logits.\(c.C)"), bias = try floats("bias.\(c.C)"), weights = try floats("weights.\(c.C)")
            let indices = try #require(file.tensor(named: "indices.\(c.C)"))
            let ix = try indices.load()
            let tokens = logits.count / c.E
            let semantics = RouterSemantics(
                scoring: .sigmoid, renormalize: c.norm_topk_prob, scale: c.routed_scaling_factor, selectionBias: true,
                groups: .init(count: c.n_group, used: c.topk_group))
            let routing = Routing.route(logits, tokens: tokens, experts: c.E, k: c.k, semantics: semantics, selectionBias: bias)
            for t in 0..<tokens {
                var expected: [Int: Float] = [:]
                for j in 0..<c.k {
                    expected[Int(ix.loadUnaligned(fromByteOffset: 8 * (t * c.k + j), as: Int64.self))] = weights[t * c.k + j]
                }
                var mine: [Int: Float] = [:]
                for e in 0..<c.E { if let at = routing.tokens[e].firstIndex(of: t) { mine[e] = routing.weights[e][at] } }
                #expect(Set(mine.keys) == Set(expected.keys), "config \(c.C) row \(t)")
                for (e, w) in expected {
                    #expect(abs((mine[e] ?? .nan) - w) <= 1e-6 * max(1, abs(w)), "config \(c.C) row \(t) expert \(e)")
                }
                rows += 1
            }
        }
        #expect(rows == 192)
    }
}

/// DeepSeek-V3's multi-token-prediction layer (`model.layers.3` of a 3-layer model, as released
/// checkpoints carry layer 61) goes through every conversion whole, or fails whole.
struct PredictionLayerTests {
    static let fixture = Fixtures.path("models/families/deepseek_v3-fp8")

    @Test func itIsCarriedThroughTheFusedLayoutAndTheNativeFormat() throws {
        let dir = try TemporaryDirectory()
        let original = try ModelDirectory.open(Self.fixture)
        let layer = Set(original.tensors.map(\.name).filter { $0.hasPrefix("model.layers.3.") && !$0.hasSuffix("_scale_inv") })
        #expect(layer.isSuperset(of: ["model.layers.3.eh_proj.weight", "model.layers.3.shared_head.head.weight"]))
        _ = try Converter.convert(Self.fixture, to: dir.file("direct"), options: ConvertOptions(names: "hf"))
        _ = try Converter.convert(Self.fixture, to: dir.file("fused"), options: ConvertOptions(names: "hf-fused"))
        _ = try Converter.convert(dir.file("fused"), to: dir.file("native.moeckpt"))
        let native = try ModelLoader.load(dir.file("native.moeckpt"))
        #expect(native.tensors.contains { $0.name == "layers.3.mtp.eh_proj" })
        let result = try Converter.convert(dir.file("native.moeckpt"), to: dir.file("back"), options: ConvertOptions(names: "hf"))
        #expect(result.leftOut.isEmpty)
        let direct = try ModelDirectory.open(dir.file("direct")), back = try ModelDirectory.open(dir.file("back"))
        #expect(Set(direct.tensors.map(\.name)).isSuperset(of: layer))
        #expect(Set(back.tensors.map(\.name)) == Set(direct.tensors.map(\.name)))
        for tensor in direct.tensors {
            let mine = try #require(back.tensor(named: tensor.name))
            #expect(mine.shape == tensor.shape && Array(mine.bytes) == Array(tensor.bytes), "\(tensor.name)")
        }
        let config = try String(contentsOfFile: dir.file("back/config.json"), encoding: .utf8)
        #expect(config.contains("\"num_nextn_predict_layers\": 1"))
    }

    @Test func aPartialLayerIsRefusedSayingWhatIsMissing() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Self.fixture, to: dir.file("full"), options: ConvertOptions(names: "hf"))
        let full = try ModelDirectory.open(dir.file("full"))
        try FileManager.default.createDirectory(atPath: dir.file("partial"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: dir.file("full/config.json"), toPath: dir.file("partial/config.json"))
        let kept = full.tensors.filter { $0.name != "model.layers.3.enorm.weight" }.map { tensor in
            TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes)
            }
        }
        let file = try OutputFile(creating: dir.file("partial/model.safetensors"))
        try SafetensorsWriter.write(kept, metadata: ["format": "pt"], to: file)
        try file.close()
        #expect {
            _ = try ModelLoader.load(dir.file("partial"))
        } throws: { error in
            (error as? FileError)?.problem as? ModelLoadError
                == .problems(["multi-token-prediction layer 3: missing tensor model.layers.3.enorm.weight"])
        }
    }
}

/// gpt-oss in mlx-lm's and llama.cpp's names: the fixtures' YaRN does not truncate, which neither
/// tool can express, so a copy whose config truncates goes through them (checked against mlx-lm
/// by hand, see docs/families.md).
struct GptOssTruncatingCopyTests {
    @Test func inLlamaCppsNamesAndKeysAndBack() throws {
        let fixture = Fixtures.path("models/families/gpt_oss")
        let dir = try TemporaryDirectory()
        let copy = try Self.truncatingCopy(of: fixture, in: dir)
        _ = try Converter.convert(copy, to: dir.file("gguf"), options: ConvertOptions(names: "gguf"))
        try GGUFNameTests.expectGGUFNamesAndKeys(dir.file("gguf"), fixture: "gpt_oss (truncating)")
        let written = try ModelLoader.load(dir.file("gguf"))
        #expect((written.architecture as? GptOssConfig)?.decoder == (try ModelLoader.load(copy).architecture as? GptOssConfig)?.decoder)
        _ = try Converter.convert(dir.file("gguf"), to: dir.file("back"), options: ConvertOptions(names: "hf"))
        #expect(try fileBytes(dir.file("back/model.safetensors")) == (try fileBytes(copy + "/model.safetensors")))
    }

    static func truncatingCopy(of fixture: String, in dir: TemporaryDirectory) throws -> String {
        let copy = dir.file("truncating")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: fixture + "/model.safetensors", toPath: copy + "/model.safetensors")
        let config = try String(contentsOfFile: fixture + "/config.json", encoding: .utf8)
        #expect(config.contains("\"truncate\": false"))
        try config.replacingOccurrences(of: "\"truncate\": false", with: "\"truncate\": true")
            .write(toFile: copy + "/config.json", atomically: true, encoding: .utf8)
        return copy
    }

    @Test func inMLXTheExpertsComeApartAndGoBackTogetherExactly() throws {
        let fixture = Fixtures.path("models/families/gpt_oss")
        let dir = try TemporaryDirectory()
        let copy = try Self.truncatingCopy(of: fixture, in: dir)
        _ = try Converter.convert(copy, to: dir.file("mlx"), options: ConvertOptions(names: "mlx"))
        let mlx = try ModelDirectory.open(dir.file("mlx"))
        let gate = try #require(mlx.tensor(named: "model.layers.0.mlp.experts.gate_proj.weight"))
        let up = try #require(mlx.tensor(named: "model.layers.0.mlp.experts.up_proj.bias"))
        #expect(gate.shape == [8, 32, 64] && up.shape == [8, 32])
        // gate_up_proj [E, H, 2I]: gate is the even columns, transposed; up_proj_bias the odd entries.
        let original = try ModelDirectory.open(fixture)
        let fused = try floats(try #require(original.tensor(named: "model.layers.0.mlp.experts.gate_up_proj")))
        let fusedBias = try floats(try #require(original.tensor(named: "model.layers.0.mlp.experts.gate_up_proj_bias")))
        let (g, u) = (try floats(gate), try floats(up))
        for (e, o, i) in [(0, 0, 0), (3, 5, 7), (7, 31, 63)] {
            #expect(g[(e * 32 + o) * 64 + i] == fused[(e * 64 + i) * 64 + 2 * o])
            #expect(u[e * 32 + o] == fusedBias[e * 64 + 2 * o + 1])
        }
        _ = try Converter.convert(dir.file("mlx"), to: dir.file("back"), options: ConvertOptions(names: "hf"))
        let back = try ModelDirectory.open(dir.file("back"))
        for tensor in original.tensors {
            let mine = try #require(back.tensor(named: tensor.name))
            #expect(mine.shape == tensor.shape && Array(mine.bytes) == Array(tensor.bytes), "\(tensor.name)")
        }
    }

    private func floats(_ tensor: StoredTensor) throws -> [Float] {
        let bytes = try tensor.load()
        return (0..<tensor.elementCount).map { bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
    }
}

/// gpt-oss's MXFP4 experts as released run in the kernels as MXFP4 blocks (re-packed once, 17
/// bytes per 32 weights, not widened to F32), with the same results as on the widened weights.
struct MXFP4ForwardTests {
    @Test func theBlocksGiveTheWidenedWeightsResultsBitForBit() throws {
        let model = try ModelLoader.load(Fixtures.path("models/families/gpt_oss-mxfp4"))
        #expect(model.quantized.keys.sorted() == (0..<3).flatMap { l in ["down", "gate", "up"].map { "layers.\(l).moe.\($0)" } })
        #expect(model.quantized["layers.0.moe.gate"]?.shape == [8, 32, 64])
        let widened = LoadedModel(
            architecture: model.architecture, descriptionSource: model.descriptionSource, layout: model.layout,
            tensors: model.tensors, checkpoint: model.checkpoint)
        let input = ModelInput.tokenIDs([[1, 5, 9, 2, 7, 3], [4, 4, 8, 0, 6, 1]])
        let blocks = try model.architecture.forwardPass(model).run(input, threads: 2, auxLosses: false)
        let floats = try widened.architecture.forwardPass(widened).run(input, threads: 2, auxLosses: false)
        #expect(blocks[.logits] != nil && blocks[.logits] == floats[.logits])
    }
}
