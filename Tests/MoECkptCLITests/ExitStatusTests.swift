import Foundation
import MoECkptTestSupport
import Testing

/// The command line's promises: exit 0 on success, 2 with one line on stderr naming the file for
/// bad input or usage.
struct ExitStatusTests {
    @Test func inspectPrintsTheTableTotalsMetadataAndMoEStructure() throws {
        let result = try CLI.run(["inspect", Fixtures.path("safetensors/tiny-mixtral-sharded")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("format      sharded-safetensors (3 files)"))
        #expect(result.stdout.contains("model.layers.1.block_sparse_moe.experts.3.w2.weight  F32    [16, 32]"))
        #expect(result.stdout.contains("F32  41 tensors  16,080 params  64,320 bytes"))
        #expect(result.stdout.contains("layers 2, experts per layer 4, experts per token 2 (config.json)"))
        #expect(result.stderr.isEmpty)
    }

    /// A quantized GGUF's tensors are listed as stored: their ggml type and the bytes of their
    /// blocks, as gguf-py's `GGUFReader` reports them for this file (`tensor_type.name`, `n_bytes`).
    @Test func inspectShowsGGUFBlockTypesAsStored() throws {
        let result = try CLI.run(["inspect", Fixtures.path("gguf/qwen3-moe-q4_k_m/model.gguf")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("blk.0.ffn_down_exps.weight  Q6_K   [4, 256, 256]  262,144  215,040"))
        #expect(result.stdout.contains("tensors     15, 1,181,568 parameters, 772,608 bytes"))
        let totals = result.stdout.components(separatedBy: "By dtype:\n").last?.split(separator: "\n").prefix(3)
        #expect(
            totals.map(Array.init) == [
                "  F32   6 tensors    1,920 params    7,680 bytes",
                "  Q4_K  6 tensors  786,432 params  442,368 bytes",
                "  Q6_K  3 tensors  393,216 params  322,560 bytes",
            ])
    }

    @Test func inspectJSONAndFilter() throws {
        let result = try CLI.run([
            "inspect", "--json", "--filter", "*.gate.weight",
            Fixtures.path("safetensors/tiny-mixtral/model.safetensors"),
        ])
        #expect(result.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let names = (json["tensors"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(names == ["model.layers.0.block_sparse_moe.gate.weight", "model.layers.1.block_sparse_moe.gate.weight"])
        #expect(json["tensorCount"] as? Int == 41)
        #expect((json["moe"] as? [String: Any])?["activeParameters"] as? Int == 16_080 - 12_288 + 12_288 / 2)
        #expect(json["schemaVersion"] as? Int == 1)
    }

    /// `inspect --json` names the shard of each tensor (as the index does); `verify --json` gives a
    /// pass flag per model; both carry their schema version.
    @Test func jsonReportsSayWhereAndWhetherAndWhichSchema() throws {
        let sharded = Fixtures.path("safetensors/tiny-mixtral-sharded")
        let inspected = try CLI.run(["inspect", "--json", sharded])
        let json = try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as! [String: Any]
        let index = try JSONSerialization.jsonObject(with: fileBytes(sharded + "/model.safetensors.index.json")) as! [String: Any]
        let weightMap = index["weight_map"] as! [String: String]
        let files = (json["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["file"] as? String) }
        #expect(files.count == weightMap.count && files.allSatisfy { weightMap[$0.0] == $0.1 })

        let llama = Fixtures.path("gguf/qwen3-moe-q4_0")
        for (arithmetic, status) in [("ggml", 0), ("exact", 1)] {
            let result = try CLI.run([
                "verify", llama + "/model.gguf", "--expected", llama + "/llamacpp/expected.safetensors", "--arithmetic", arithmetic,
            ])
            #expect(result.status == status, "--arithmetic \(arithmetic): \(result.stdout)\(result.stderr)")
        }

        let verified = try CLI.run(["verify", "--json", Fixtures.path("models/tiny-mixtral"), Fixtures.path("models/switch_transformer")])
        #expect(verified.status == 0, "\(verified.stderr)")
        let reports = try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as! [[String: Any]]
        #expect(reports.count == 2 && reports.allSatisfy { $0["passed"] as? Bool == true && $0["schemaVersion"] as? Int == 1 })
    }

    @Test(arguments: [
        "malformed/gapOrOverlap-gap.safetensors", "malformed/htmlPage.safetensors",
        "malformed/shardMissing", "does-not-exist.safetensors", "dtypes/README.md",
    ])
    func badInputExitsTwoWithOneLineNamingTheFile(relative: String) throws {
        let path = Fixtures.path(relative)
        for command in [["inspect", path], ["convert", path, "/tmp/moeckpt-never-written.safetensors"]] {
            let result = try CLI.run(command)
            #expect(result.status == 2)
            #expect(result.stderr.hasPrefix("moeckpt: error: \(path)"))
            #expect(result.stderr.filter { $0 == "\n" }.count == 1)
            #expect(result.stdout.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/moeckpt-never-written.safetensors"))
    }

    @Test(arguments: [
        ["convert", "a"], ["convert", "a", "b", "--dtype", "f12"], ["convert", "a", "b", "--max-shard-size", "lots"],
        ["frobnicate"], ["inspect"],
    ])
    func usageErrorsExitTwo(arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("moeckpt: error: "))
    }

    /// Every subcommand's help has examples; a usage error points to that subcommand's help; the
    /// dtype spellings users type are taken; paths complete as files in the shell.
    @Test func theCommandLineHelpsWhereItIsUsed() throws {
        for command in ["inspect", "convert", "verify", "run", "bench"] {
            let help = try CLI.run([command, "--help"])
            #expect(help.status == 0 && help.stdout.contains("Examples:\n  moeckpt \(command) "), "\(command)")
        }
        let bad = try CLI.run(["convert", "a", "b", "--dtype", "f12"])
        #expect(bad.status == 2 && bad.stderr.hasSuffix("(see moeckpt convert --help)\n"))
        let dir = try TemporaryDirectory()
        for spelling in ["fp16", "float16", "bfloat16", "float32", "BF16"] {
            let result = try CLI.run([
                "convert", Fixtures.path("models/tiny-mixtral"), dir.file(spelling + ".safetensors"), "--dtype", spelling, "-q",
            ])
            #expect(result.status == 0, "\(spelling): \(result.stderr)")
        }
        let bash = try CLI.run(["--generate-completion-script", "bash"])
        let inspect = try #require(bash.stdout.range(of: "_moeckpt_inspect()"))
        let positional = try #require(bash.stdout[inspect.upperBound...].range(of: "# Offer positional completions"))
        #expect(bash.stdout[positional.upperBound...].prefix(200).contains("__moeckpt_add_completions -f"))
    }

    @Test func helpExitsZero() throws {
        let result = try CLI.run(["convert", "--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("--max-shard-size"))
    }

    @Test func convertSaysWhatItWroteAndShowsNoProgressBarWithoutATerminal() throws {
        let dir = try TemporaryDirectory()
        let result = try CLI.run([
            "convert", Fixtures.path("safetensors/tiny-mixtral"), dir.file("out"),
            "--max-shard-size", "30KB", "--dtype", "bf16",
        ])
        #expect(result.status == 0)
        #expect(result.stdout == "wrote \(dir.file("out")): 41 tensors, 32.16 KB in 2 files\n")
        #expect(result.stderr.isEmpty)
    }
}

/// HDF5 input that libhdf5 cannot open: one line from moeckpt, nothing from the library.
struct HDF5CommandTests {
    @Test(arguments: [
        "hdf5/malformed/empty.h5", "hdf5/malformed/not_hdf5.h5", "hdf5/malformed/random.h5",
        "hdf5/malformed/signature_only.h5", "hdf5/malformed/truncated.h5", "hdf5-fuzz/invalid-free.h5",
    ])
    func malformedHDF5ExitsTwoWithoutLibraryNoise(file: String) throws {
        let path = Fixtures.path(file)
        let result = try CLI.run(["inspect", path])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("moeckpt: error: \(path): ") && result.stderr.filter { $0 == "\n" }.count == 1)
        #expect(!result.stderr.contains("HDF5-DIAG"))
    }

    @Test func inspectListsKerasWeightsWithTheirPaths() throws {
        let result = try CLI.run(["inspect", Fixtures.path("hdf5/keras/tiny.weights.h5")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("/layers/dense/vars/0                F32    [8, 6]"))
    }
}
