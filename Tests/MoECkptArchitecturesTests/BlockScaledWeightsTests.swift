import MoECkptForward
import MoECkptKernels
import MoECkptModels
import MoECkptTestSupport
import Testing

@testable import MoECkptArchitectures

/// DeepSeek-V3's FP8 weights (F8_E4M3 with a scale per 128 x 128 block, as released) are read by
/// the kernels where the file has them, not dequantized into an fp32 copy four times their size.
struct BlockScaledWeightsTests {
    @Test func fp8WeightsAreReadInPlace() throws {
        let model = try ModelLoader.load(Fixtures.path("models/families/deepseek_v3-fp8"))
        let forward = try #require(try model.architecture.forwardPass(model) as? DecoderForward)
        var experts: [WeightMatrix] = []
        var attention: [WeightMatrix] = []
        for layer in forward.layers {
            attention += [layer.o.weight]
            if case .sparse(let block) = layer.mlp, case .stacked(let gate, let up, let down) = block.experts {
                experts += (gate.layers + up.layers + down.layers).map(\.weight)
            }
        }
        #expect(!experts.isEmpty && experts.allSatisfy { $0.type == .f8e4m3 && $0.scales?.rows == 128 })
        #expect(attention.allSatisfy { $0.type == .f8e4m3 }, "\(attention.map(\.type))")
        // The dequantized copies were never made: their derived storage holds no bytes.
        let expert = try #require(model.tensor("layers.1.moe.gate"))
        #expect(expert.rope.pieces.allSatisfy { $0.storage.bytes.count == 0 })
    }
}
