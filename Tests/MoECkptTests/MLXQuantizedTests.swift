import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt
@testable import MoECkptFormats
@testable import MoECkptModels

/// mlx-lm's quantized checkpoints (issue 20): each written by mlx-lm's own `convert`
/// (scripts/make_mlx_quantized_fixtures.py) runs to the logits mlx-lm's forward computes on it,
/// within 1e-5 (both compute on the same dequantized values).
struct MLXQuantizedTests {
    static let cases: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.path("mlx"))) ?? []
        return names.filter { !["sources", "README.md"].contains($0) }.sorted()
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
