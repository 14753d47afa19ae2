import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// `moeckpt verify` and `moeckpt run` from the command line.
struct VerifyCommandTests {
    @Test func verifyPassesWithStatusZeroAndASummary() throws {
        let result = try CLI.run([
            "verify", Fixtures.path("models/tiny-mixtral"), Fixtures.path("models/layouts/gguf"),
            Fixtures.path("models/sparse_moe_shared"),
        ])
        #expect(result.status == 0)
        #expect(result.stdout.hasSuffix("verify: 3 models, 18 tensors: all pass\n"))
        #expect(result.stdout.contains("  logits           [2, 12, 64]"))
    }

    @Test func aMismatchExitsOneAndSaysWhichTensor() throws {
        // The module's outputs checked against another module's expected file of the same shape.
        let result = try CLI.run([
            "verify", Fixtures.path("models/switch_transformer"),
            "--expected", Fixtures.path("models/switch_transformer_scaled/expected.safetensors"),
        ])
        #expect(result.status == 1)
        #expect(result.stdout.contains("FAIL: 1 of 1 tensors differ"))
        #expect(result.stdout.contains("verify: 1 of 1 models FAIL"))
    }

    @Test func badInputExitsTwo() throws {
        for arguments in [
            ["verify", Fixtures.path("safetensors/single_meta.safetensors")],
            ["verify", Fixtures.path("models/basic_moe"), "--expected", Fixtures.path("malformed/htmlPage.safetensors")],
            ["verify", Fixtures.path("models/tiny-mixtral"), "--expected", Fixtures.path("models/basic_moe/expected.safetensors")],
            ["verify", Fixtures.path("models/basic_moe"), "--atol", "-1"],
        ] {
            let result = try CLI.run(arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("moeckpt: error: ") && result.stderr.filter { $0 == "\n" }.count == 1)
        }
    }

    @Test func runWritesEveryOutputUnderTheStandardNames() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out.safetensors")
        let result = try CLI.run([
            "run", Fixtures.path("models/tiny-mixtral"), "--input",
            Fixtures.path("models/tiny-mixtral/expected.safetensors"), "--output", out, "--aux-losses",
        ])
        #expect(result.status == 0)
        let outputs = try Checkpoint.open(out)
        #expect(
            Set(outputs.tensors.map(\.name)) == [
                "logits", "hidden_states.0", "hidden_states.1", "hidden_states.2",
                "router_logits.0", "router_logits.1", "aux_loss", "router_z_loss",
            ])
        // The logits are transformers' within verify's tolerance.
        let expected = try Checkpoint.open(Fixtures.path("models/tiny-mixtral/expected.safetensors"))
        let values = { (t: StoredTensor) in (0..<t.elementCount).map { t.bytes.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
        let comparison = Verifier.compare(
            "logits", HostTensor(shape: [2, 12, 64], values: values(try #require(outputs.tensor(named: "logits")))),
            HostTensor(shape: [2, 12, 64], values: values(try #require(expected.tensor(named: "logits")))),
            atol: 1e-5, rtol: 1e-4)
        #expect(comparison.passed)
    }
}

extension VerifyCommandTests {
    /// A single file written from a directory keeps no config.json: convert says so, and
    /// verify/run/inspect take it back with --config.
    @Test func aSingleFileWithoutItsDescriptionTakesConfig() throws {
        let dir = try TemporaryDirectory()
        let model = Fixtures.path("models/tiny-mixtral")
        let converted = try CLI.run(["convert", model, dir.file("one.safetensors")])
        #expect(converted.status == 0 && converted.stderr.contains("holds no model description") && converted.stderr.contains("--config"))
        let expected = ["--expected", model + "/expected.safetensors"]
        let without = try CLI.run(["verify", dir.file("one.safetensors")] + expected)
        #expect(without.status == 2 && without.stderr.contains("--config FILE"))
        let with = try CLI.run(["verify", dir.file("one.safetensors"), "--config", model + "/config.json"] + expected)
        #expect(with.status == 0, "\(with.stderr)")
        let inspected = try CLI.run(["inspect", dir.file("one.safetensors"), "--config", model + "/config.json"])
        #expect(inspected.stdout.contains("mixtral (from config.json)"))
        let ran = try CLI.run(
            [
                "run", dir.file("one.safetensors"), "--config", model + "/config.json", "--input", model + "/expected.safetensors",
                "--output", dir.file("out.safetensors"),
            ])
        #expect(ran.status == 0, "\(ran.stderr)")
    }
}
