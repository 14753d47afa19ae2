import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// The forward passes against outputs PyTorch computed (fixtures/models, scripts/make_model_fixtures.py).
struct VerifyTests {
    static let fixtures: [String] = {
        let root = Fixtures.path("models")
        let top = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let layouts = (try? FileManager.default.contentsOfDirectory(atPath: root + "/layouts")) ?? []
        return (top.map { "models/" + $0 } + layouts.map { "models/layouts/" + $0 })
            .filter { FileManager.default.fileExists(atPath: Fixtures.path($0 + "/expected.safetensors")) }.sorted()
    }()

    @Test func everyKindOfFixtureIsPresent() {
        #expect(Self.fixtures.count >= 17)
    }

    @Test(arguments: fixtures)
    func everyFixtureVerifies(fixture: String) throws {
        let report = try Verifier.verify(Fixtures.path(fixture))
        #expect(report.passed, "\(Verifier.render(report))")
        #expect(!report.comparisons.isEmpty)
    }

    @Test func causalLMsCheckLogitsHiddenStatesRouterLogitsAndBothLosses() throws {
        let report = try Verifier.verify(Fixtures.path("models/tiny-mixtral-variant"))
        #expect(
            report.comparisons.map(\.name) == [
                "aux_loss", "hidden_states.0", "hidden_states.1", "hidden_states.2",
                "logits", "router_logits.0", "router_logits.1", "router_z_loss",
            ])
    }

    @Test func aPerturbedWeightFails() throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("models/mixtral-mha-top1"))
        let target = "model.layers.1.block_sparse_moe.experts.3.w2.weight"
        let tensors = source.tensors.map { tensor in
            TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                (file: any ByteSink) throws(FileError) in
                var bytes = Array(tensor.bytes)
                if tensor.name == target {
                    let value = bytes.withUnsafeBytes { $0.load(as: Float.self) } * 1.01
                    withUnsafeBytes(of: value) { for i in 0..<4 { bytes[i] = $0[i] } }
                }
                try file.write(bytes)
            }
        }
        let file = try OutputFile(creating: dir.file("model.safetensors"))
        try SafetensorsWriter.write(tensors, metadata: source.metadata, to: file)
        try file.close()
        for name in ["config.json", "expected.safetensors"] {
            try FileManager.default.copyItem(atPath: Fixtures.path("models/mixtral-mha-top1/" + name), toPath: dir.file(name))
        }
        let report = try Verifier.verify(dir.path)
        #expect(!report.passed)
        #expect(report.comparisons.first { $0.name == "logits" }?.passed == false)
        // Layers before the perturbed one still match.
        #expect(report.comparisons.first { $0.name == "hidden_states.1" }?.passed == true)
    }

    @Test func outputsAreBitIdenticalForOneAndTwoThreadsAndFromRunToRun() throws {
        for fixture in ["models/mixtral-mha-top1", "models/tiny-mixtral-variant", "models/mixtral_block", "models/sparse_moe_shared"] {
            let model = try ModelLoader.load(Fixtures.path(fixture))
            let inputs = try Checkpoint.open(Fixtures.path(fixture + "/expected.safetensors"))
            let runner = try ModelRunner(model)
            let one = try runner.run(inputsFrom: inputs, options: RunOptions(threads: 1, auxLosses: true))
            let two = try runner.run(inputsFrom: inputs, options: RunOptions(threads: 2, auxLosses: true))
            let again = try runner.run(inputsFrom: inputs, options: RunOptions(threads: 2, auxLosses: true))
            #expect(one == two && two == again, "\(fixture)")
        }
    }

    @Test func toleranceIsNumpysAllclose() {
        let expected = HostTensor(shape: [3], values: [1, -2, 0])
        let close = HostTensor(shape: [3], values: [1.0001, -2.0003, 0.0001])
        #expect(Verifier.compare("t", close, expected, atol: 1e-4, rtol: 1e-4).passed)
        let far = HostTensor(shape: [3], values: [1, -2, 0.00021])
        let result = Verifier.compare("t", far, expected, atol: 1e-4, rtol: 1e-4)
        #expect(!result.passed && result.worstIndex == [2])
        #expect(!Verifier.compare("t", HostTensor(shape: [3], values: [.nan, -2, 0]), expected, atol: 1, rtol: 1).passed)
        #expect(!Verifier.compare("t", HostTensor(shape: [1, 3], values: [1, -2, 0]), expected, atol: 1, rtol: 1).passed)
    }

    @Test func anUnknownKeyIsAnErrorNotSkipped() throws {
        let dir = try TemporaryDirectory()
        let expected = try Checkpoint.open(Fixtures.path("models/basic_moe/expected.safetensors"))
        let renamed = expected.tensors.map { tensor in
            TensorToWrite(
                name: tensor.name == "outputs" ? "output" : tensor.name, dtype: tensor.dtype, shape: tensor.shape,
                byteCount: tensor.byteCount
            ) { (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes) }
        }
        let file = try OutputFile(creating: dir.file("expected.safetensors"))
        try SafetensorsWriter.write(renamed, metadata: [:], to: file)
        try file.close()
        #expect {
            _ = try Verifier.verify(Fixtures.path("models/basic_moe"), expected: dir.file("expected.safetensors"))
        } throws: { error in
            (error as? FileError)?.problem as? VerifyError == .unknownKey("output")
        }
    }
}

/// The figures quoted for quantized parity, worked by hand.
struct QuantizedParityTests {
    @Test func nmseAndTopOneAgreement() {
        let expected = HostTensor(shape: [2, 3], values: [1, 2, 3, 3, 2, 1])
        let actual = HostTensor(shape: [2, 3], values: [1, 2, 4, 1, 2, 1])
        let c = Verifier.compare("logits", actual, expected, atol: 0, rtol: 0)
        // Errors 1 and 2: 5 over 28; the first row's largest is at 2 in both, the second's at 0 and 1.
        #expect(abs(c.nmse - 5.0 / 28.0) < 1e-12 && c.top1Agreement == 0.5)
        #expect(Verifier.compare("t", expected, expected, atol: 0, rtol: 0).nmse == 0)
    }

    @Test func aQuantizedModelsReportSaysSo() throws {
        let dir = try TemporaryDirectory()
        let model = Fixtures.path("models/families/qwen3_moe")
        _ = try Converter.convert(model, to: dir.file("q8.gguf"), options: ConvertOptions(blocks: .q8_0))
        let report = try Verifier.verify(dir.file("q8.gguf"), expected: model + "/expected.safetensors", options: RunOptions(threads: 2))
        #expect(report.quantized)
        let logits = try #require(report.comparisons.first { $0.name == "logits" })
        #expect(logits.nmse > 0 && logits.nmse < 1e-2 && logits.top1Agreement > 0.9)
        #expect(Verifier.render(report).contains("quantized weights: logits NMSE"))
    }
}
