import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt
@testable import MoECkptFormats
@testable import MoECkptForward
@testable import MoECkptKernels
@testable import MoECkptModels
@testable import MoECkptTensors

/// mlx-lm's quantized checkpoints (issue 20): each written by mlx-lm's own `convert`
/// (scripts/make_mlx_quantized_fixtures.py) runs to the logits mlx-lm's forward computes on it,
/// within 1e-5 (both compute on the same dequantized values).
struct MLXQuantizedTests {
    static let cases: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("mlx"))) ?? []
        return names.filter { !["sources", "README.md", "BITS.json"].contains($0) }.sorted()
    }()

    @Test func everyModeAndFamilyIsThere() {
        #expect(Self.cases.count == 11)
        for part in ["affine-2", "affine-3", "affine-4", "affine-5", "affine-6", "affine-8", "mxfp4", "mxfp8", "nvfp4"] {
            #expect(Self.cases.contains { $0.contains(part) }, "\(part)")
        }
    }

    @Test(arguments: cases)
    func itComputesMLXLMsLogits(name: String) throws {
        let report = try Verifier.verify(Fixtures.path("mlx/\(name)"), options: RunOptions(threads: 2))
        #expect(report.passed, "\(report)")
    }

    /// inspect shows each parameters' modules and the bits per weight, as mlx-lm's
    /// `compute_bits_per_weight` counts them (fixtures/mlx/BITS.json).
    @Test(arguments: cases)
    func inspectShowsTheQuantization(name: String) throws {
        let bits = try #require(try JSONSerialization.jsonObject(with: fileBytes(Fixtures.path("mlx/BITS.json"))) as? [String: Double])
        let report = Inspector.report(try ModelDirectory.open(Fixtures.path("mlx/\(name)")))
        let quantization = try #require(report.model?.quantization)
        #expect(abs(quantization.bitsPerWeight - (bits[name] ?? 0)) < 1e-5, "\(quantization.bitsPerWeight)")
        #expect(report.model?.problems.isEmpty == true)
        if name.hasPrefix("qwen3_moe") {
            #expect(
                quantization.groups.last.map { ($0.mode, $0.bits, $0.groupSize, $0.modules, $0.roles) } ?? ("", 0, 0, 0, []) == (
                    "affine", 8, 64, 2, ["mlp.gate"]
                ))
        }
        #expect(Inspector.render(report).contains("\nquantized   mlx-lm, "))
    }

    /// Against transformers' float32 logits of the source: within 1.5 x mlx-lm's own error, and
    /// the report gives the logits' NMSE and top-1 agreement, as for GGUF's quantized files.
    @Test(arguments: cases)
    func itVerifiesAgainstTheFloatModelWithinMLXLMsOwnError(name: String) throws {
        let report = try Verifier.verify(
            Fixtures.path("mlx/\(name)"), expected: Fixtures.path("mlx/\(name)/float32/expected.safetensors"),
            options: RunOptions(threads: 2))
        #expect(report.passed && report.quantized, "\(report)")
        #expect(Verifier.render(report).contains("quantized weights: logits NMSE"))
    }

    /// Qwen3-MoE's router keeps mlx-lm's 8 bits (an override without "mode": affine, even in an
    /// mxfp4 model); the rest has the default.
    @Test func overridesAndTheirModes() throws {
        let description = try ModelLoader.standard.describe(try ModelDirectory.open(Fixtures.path("mlx/qwen3_moe-mxfp4")))
        let quantization = try #require(description.mlxQuantization)
        #expect(quantization.defaults == .init(mode: .mxfp4, bits: 4, groupSize: 32))
        #expect(quantization.parameters(forModule: "model.layers.1.mlp.gate") == .init(mode: .affine, bits: 8, groupSize: 64))
        #expect(quantization.parameters(forModule: "model.layers.1.self_attn.q_proj") == quantization.defaults)

        func read(_ text: String) throws -> MLXQuantization? {
            try MLXQuantization.read(
                try Array(text.utf8).withUnsafeBytes { bytes throws(ModelConfigError) in try ConfigFields.parse(bytes) })
        }
        let off = try read(#"{"quantization_config": {"group_size": 32, "bits": 3, "lm_head": false}}"#)
        #expect(off?.defaults == .init(bits: 3, groupSize: 32) && off?.parameters(forModule: "lm_head") == nil)
        #expect(try read(#"{"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}"#) == nil)
        #expect(throws: ModelConfigError.self) { try read(#"{"quantization": {"group_size": 48, "bits": 4}}"#) }
        #expect(throws: ModelConfigError.self) { try read(#"{"quantization": {"group_size": 64, "bits": 7}}"#) }
    }

    /// `convert --names mlx --quantize`: every tensor (codes, scales, biases, and the weights left
    /// in float) is mlx-lm's own `convert` output's, bit for bit, and config.json's quantization is
    /// its (Qwen3-MoE's router at 8 bits recorded as mlx-lm records it).
    @Test(arguments: [
        "mixtral-affine-4-64", "mixtral-affine-3-32", "mixtral-affine-8-128", "qwen3_moe-affine-4-64", "qwen3_moe-affine-6-32",
        "mixtral-nvfp4", "qwen3_moe-mxfp4", "qwen3_moe-mxfp8",
    ])
    func quantizationIsMLXsBitForBit(name: String) throws {
        let parts = name.split(separator: "-")
        let dir = try TemporaryDirectory()
        let spec = parts[1] == "affine" ? "affine:\(parts[2]):\(parts[3])" : String(parts[1])
        let parameters = try #require(MLXQuantization.Parameters(argument: spec))
        _ = try Converter.convert(
            Fixtures.path("mlx/sources/\(parts[0])"), to: dir.file("out"),
            options: ConvertOptions(names: "mlx", mlxQuantization: parameters))
        let ours = try Checkpoint.open(dir.file("out"))
        let theirs = try Checkpoint.open(Fixtures.path("mlx/\(name)"))
        #expect(Set(ours.tensors.map(\.name)) == Set(theirs.tensors.map(\.name)))
        for tensor in theirs.tensors {
            let mine = try #require(ours.tensor(named: tensor.name))
            #expect(mine.dtype == tensor.dtype && mine.shape == tensor.shape, "\(tensor.name)")
            try mine.rope.load()
            try tensor.rope.load()
            #expect(mine.rope.copyBytes() == tensor.rope.copyBytes(), "\(tensor.name)")
        }
        func quantization(_ path: String) throws -> MLXQuantization? {
            try ModelLoader.standard.describe(try ModelDirectory.open(path)).mlxQuantization
        }
        #expect(try quantization(dir.file("out")) == quantization(Fixtures.path("mlx/\(name)")))
        // And it runs to mlx-lm's logits.
        try FileManager.default.copyItem(
            atPath: Fixtures.path("mlx/\(name)/expected.safetensors"), toPath: dir.file("out/expected.safetensors"))
        #expect(try Verifier.verify(dir.file("out"), options: RunOptions(threads: 2)).passed)
    }

    /// A quantized model written under other names is written dequantized, without mlx-lm's
    /// quantization in its config.json; --quantize needs --names mlx.
    @Test func otherOutputsAreDequantized() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path("mlx/mixtral-affine-4-64"), to: dir.file("hf"), options: ConvertOptions(names: "hf"))
        let config = try String(contentsOfFile: dir.file("hf/config.json"), encoding: .utf8)
        #expect(!config.contains("quantization"))
        let hf = try Checkpoint.open(dir.file("hf"))
        #expect(
            hf.tensors.allSatisfy { $0.dtype == .f32 } && hf.tensor(named: "model.layers.0.block_sparse_moe.experts.3.w2.weight") != nil)
        try FileManager.default.copyItem(
            atPath: Fixtures.path("mlx/mixtral-affine-4-64/expected.safetensors"), toPath: dir.file("hf/expected.safetensors"))
        #expect(try Verifier.verify(dir.file("hf"), options: RunOptions(threads: 2)).passed)
        #expect(throws: OutputPlanError.quantizeNeedsMLXNames) {
            try OutputPlan(destination: dir.file("x"), options: ConvertOptions(mlxQuantization: .init(bits: 4, groupSize: 64)))
        }
    }

    /// Without config.json's quantization, the load fails in one line that names the cause (bits
    /// and group size told by the shapes) before a few of the problems and their count.
    @Test func quantizedWeightsWithoutTheirConfigAreNamed() throws {
        let dir = try TemporaryDirectory()
        for name in ["model.safetensors", "model.safetensors.index.json"] {
            try FileManager.default.copyItem(atPath: Fixtures.path("mlx/mixtral-affine-3-32/\(name)"), toPath: dir.file(name))
        }
        let config = try String(contentsOfFile: Fixtures.path("mlx/mixtral-affine-3-32/config.json"), encoding: .utf8)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any])
        object["quantization"] = nil
        object["quantization_config"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: dir.file("config.json")))
        let error = try #require(throws: FileError.self) { try ModelLoader.standard.load(dir.path) }
        let text = error.description
        #expect(text.contains("the weights are MLX-quantized (affine, bits 3, group 32: 18 modules"), "\(text)")
        #expect(text.contains("; and 49 more)") && !text.contains("\n"), "\(text)")
    }

    /// compare: an mlx-lm quantization of a model against the model reports its figures (quantized
    /// against float), naming how each weight is stored.
    @Test func compareReportsAQuantizationOfItsSource() throws {
        let report = try Comparer.compare(
            Fixtures.path("mlx/sources/qwen3_moe"), Fixtures.path("mlx/qwen3_moe-affine-4-64"), options: RunOptions(threads: 2))
        #expect(report.equivalent && report.mistakes.isEmpty)
        let router = try #require(report.weights.first { $0.name == "layers.0.moe.router" })
        #expect(router.dtypeB == "MLX 8-bit" && router.result == .reported)
        #expect(report.weights.first { $0.name == "layers.0.moe.gate" }?.dtypeB == "MLX 4-bit")
        #expect(report.forward?.tolerance == nil)
    }

    /// Affine codes of 2, 4 and 8 bits and the microscaling modes are read in place by the kernels
    /// (scales and biases widened per group; mxfp8 as FP8 with a scale per one-row block); the
    /// widths whose codes straddle bytes (3, 5, 6) take the dequantized copy. Either way verify
    /// passes (above).
    @Test func codesAreReadInPlace() throws {
        let cases: [(String, MatrixWeightType)] = [
            ("olmoe-affine-2-64", .mlx2), ("qwen3_moe-affine-4-64", .mlx4), ("mixtral-affine-8-128", .mlx8),
            ("qwen3_moe-mxfp4", .mlxE2M1), ("mixtral-nvfp4", .mlxE2M1), ("qwen3_moe-mxfp8", .f8e4m3),
        ]
        for (name, type) in cases {
            let reader = WeightReader(model: try ModelLoader.standard.load(Fixtures.path("mlx/\(name)")))
            #expect(try reader.matrix("layers.0.attn.q").type == type, "\(name)")
            let experts = try reader.experts("layers.1.moe.down", experts: 4, inputs: 128, outputs: 128)
            #expect(experts.layers.allSatisfy { $0.weight.type == type }, "\(name)")
        }
        let threeBit = WeightReader(model: try ModelLoader.standard.load(Fixtures.path("mlx/mixtral-affine-3-32")))
        #expect(try threeBit.matrix("layers.0.attn.q").type == .f32)
    }

    /// A row of words that does not hold whole codes (4 words of 3-bit codes) is refused, never
    /// read as more rows than the weight has.
    @Test func rowsOfPartialCodesAreRefused() {
        func zeros(_ name: String, _ dtype: DType, _ shape: [Int]) -> NamedTensor {
            let bytes = shape.reduce(1, *) * dtype.byteWidth!
            let storage = DerivedStorage(name: name, byteCount: bytes, sources: []) { _, out in
                out.initializeMemory(as: UInt8.self, repeating: 0)
            }
            return NamedTensor(name: name, dtype: dtype, shape: shape, rope: storage.rope)
        }
        let quantization = MLXQuantization(defaults: .init(bits: 3, groupSize: 32))
        let (tensors, problems) = quantization.dequantize([
            zeros("m.weight", .u32, [2, 4]), zeros("m.scales", .f32, [2, 1]), zeros("m.biases", .f32, [2, 1]),
        ])
        #expect(tensors.isEmpty && problems == ["m.weight: 4 words a row do not hold whole 3-bit codes"], "\(problems)")
    }

    /// E4M3 rounding as MLX's ToFP8: to nearest, ties to the even code, saturating at ±448, -0 kept.
    @Test func e4m3RoundsToNearestEvenAndSaturates() {
        let value = { (code: Int) in Float(bitPattern: Minifloat.f8E4M3.table[code]) }
        #expect(MLXMicroscaled.e4m3(448) == 0x7E && MLXMicroscaled.e4m3(1000) == 0x7E && MLXMicroscaled.e4m3(-.infinity) == 0xFE)
        #expect(MLXMicroscaled.e4m3(-0.0) == 0x80 && MLXMicroscaled.e4m3(0) == 0)
        for code in 1..<0x7E {
            let (low, high) = (value(code), value(code + 1))
            #expect(MLXMicroscaled.e4m3(low) == UInt8(code))
            let tie = (low + high) / 2  // exact: one more bit than E4M3 has
            #expect(MLXMicroscaled.e4m3(tie) == UInt8(code % 2 == 0 ? code : code + 1), "\(code)")
            #expect(MLXMicroscaled.e4m3(tie.nextDown) == UInt8(code) && MLXMicroscaled.e4m3(tie.nextUp) == UInt8(code + 1))
        }
    }

    /// Codes are one little-endian bit stream per row: a 3-bit code can straddle two words
    /// (code 10 is bits 30-31 of word 0 and bit 0 of word 1).
    @Test func codesStraddleWords() {
        let words: [UInt32] = [0b10 << 30, 0b1]
        let codes = MLXCodes(bits: 3, columns: 32, groupSize: 32, mode: .affine)
        words.withUnsafeBytes { row in
            #expect(codes.code(row, 10) == 0b110)
            #expect(codes.code(row, 9) == 0 && codes.code(row, 11) == 0)
        }
    }
}
