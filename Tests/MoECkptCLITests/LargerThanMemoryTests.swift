import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// Weights are used where the file mapping has them (issue 18): a model whose weights are several
/// times the private memory the process may use runs, and computes what it computes without the
/// limit. RLIMIT_DATA (util-linux's prlimit --data) counts private writable memory, not the
/// read-only mappings the weights are read from, so it is the limit that tells the two apart;
/// moeckpt itself needs about 40 MB of it (measured: 20 MB fails, 40 MB runs).
struct LargerThanMemoryTests {
    static let hidden = 32  // the fixture's
    static let vocabulary = 1 << 21  // embedding and head: 128 MiB each in BF16

    /// The Qwen3-MoE BF16 fixture with its vocabulary widened: the embedding and the (untied) head
    /// filled with seeded BF16 values (one 1 MiB block of rows, repeated), every other tensor as
    /// it is.
    static func largeVocabularyModel(in dir: TemporaryDirectory) throws -> String {
        let fixture = Fixtures.path("models/families/qwen3_moe-bf16")
        let model = dir.file("model")
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: false)
        var config = try JSONSerialization.jsonObject(with: fileBytes(fixture + "/config.json")) as! [String: Any]
        config["vocab_size"] = vocabulary
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: URL(fileURLWithPath: model + "/config.json"))
        let source = try Checkpoint.open(fixture + "/model.safetensors")
        let tensors = source.tensors.map { tensor in
            guard tensor.name == "model.embed_tokens.weight" || tensor.name == "lm_head.weight" else {
                return TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                    (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes)
                }
            }
            let rows = 1 << 14
            return TensorToWrite(name: tensor.name, dtype: .bf16, shape: [vocabulary, hidden], byteCount: vocabulary * hidden * 2) {
                (file: any ByteSink) throws(FileError) in
                var generator = SeededGenerator(seed: tensor.name == "lm_head.weight" ? 2 : 1)
                // BF16 values in (-0.5, 0.5): sign, exponent 117-125, seven mantissa bits.
                let block = (0..<(rows * hidden)).map { _ -> UInt16 in
                    let bits = UInt16.random(in: 0...UInt16.max, using: &generator)
                    return (bits & 0x807F) | UInt16(117 + bits % 9) << 7
                }
                let bytes = block.withUnsafeBytes { Array($0) }
                for _ in 0..<(vocabulary / rows) { try file.write(bytes) }
            }
        }
        let file = try OutputFile(creating: model + "/model.safetensors")
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: file)
        try file.close()
        return model
    }

    static func writeInputs(in dir: TemporaryDirectory) throws -> String {
        let ids: [Int64] = [5, Int64(Self.vocabulary - 1), 1_048_576]
        let path = dir.file("inputs.safetensors")
        let inputs = try OutputFile(creating: path)
        try SafetensorsWriter.write(
            [
                TensorToWrite(name: "input_ids", dtype: .i64, shape: [1, ids.count], byteCount: ids.count * 8) {
                    (file: any ByteSink) throws(FileError) in try file.write(ids.withUnsafeBytes { Array($0) })
                }
            ], metadata: [:], to: inputs)
        try inputs.close()
        return path
    }

    @Test(.enabled(if: HostileInputTests.addressSpaceLimitsWork, "needs prlimit and a build without the address sanitizer"))
    func aModelRunsUnderADataLimitSmallerThanItsWeights() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.largeVocabularyModel(in: dir)
        let limit = 96 << 20
        let weights = try FileManager.default.attributesOfItem(atPath: model + "/model.safetensors")[.size] as! Int
        #expect(weights > 2 * limit, "the weights (\(weights) bytes) are more than twice the limit")

        let run = ["run", model, "--input", try Self.writeInputs(in: dir), "--output"]
        let free = try CLI.run(run + [dir.file("free.safetensors")])
        let limited = try CLI.run(run + [dir.file("limited.safetensors")], under: ["/usr/bin/prlimit", "--data=\(limit)"])
        #expect(free.status == 0, "\(free.stderr)")
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(try CLI.sha256(dir.file("limited.safetensors")) == CLI.sha256(dir.file("free.safetensors")))
        // bench reports it: the weights are file pages, the anonymous peak is a fraction of them.
        let bench = try CLI.run(["bench", model, "--what", "forward", "--tokens", "1", "--repeat", "1", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        let row = try #require((try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [[String: Any]])?.first)
        let (residentPeak, anonymousPeak) = (row["peak_rss"] as? Int ?? -1, row["peak_anon"] as? Int ?? -1)
        #expect(0 < anonymousPeak && anonymousPeak < limit && residentPeak > anonymousPeak, "\(row)")
    }

    /// A memory cgroup v1 this process may create a child of (a root container), or nil.
    static let memoryCGroup: String? = {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.split(separator: ":").dropFirst().first == "memory" }),
            let path = line.split(separator: ":", maxSplits: 2).last
        else { return nil }
        let parent = "/sys/fs/cgroup/memory" + (path == "/" ? "" : path)
        return access(parent, W_OK) == 0 && FileManager.default.fileExists(atPath: parent + "/memory.limit_in_bytes") ? parent : nil
    }()

    /// The same model under a memory cgroup whose limit (page cache included) is half its weights,
    /// the weights out of the page cache first, so that they are read and reclaimed under the
    /// limit: the limit is hit (its failure count rises) and the run still succeeds, because the
    /// budget for allocations leaves out reclaimable file pages.
    @Test(.enabled(if: memoryCGroup != nil, "needs a memory cgroup (v1) this process may create"))
    func aModelRunsInAMemoryCGroupSmallerThanItsWeights() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.largeVocabularyModel(in: dir)
        let inputs = try Self.writeInputs(in: dir)
        let run = ["run", model, "--input", inputs, "--output"]
        #expect(try CLI.run(run + [dir.file("free.safetensors")]).status == 0)

        let group = Self.memoryCGroup! + "/moeckpt-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { rmdir(group) }
        let limit = 128 << 20
        try "\(limit)".write(toFile: group + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)
        let fd = open(model + "/model.safetensors", O_RDONLY)
        #expect(fd >= 0 && fsync(fd) == 0 && posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED)) == 0)
        close(fd)
        let limited = try CLI.run(
            run + [dir.file("limited.safetensors")], under: ["/bin/sh", "-c", "echo $$ > \(group)/cgroup.procs && exec \"$@\"", "sh"])
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(try CLI.sha256(dir.file("limited.safetensors")) == CLI.sha256(dir.file("free.safetensors")))
        // verify reads its expected file after the forward pass, when the page cache fills the limit.
        let outputs = try Checkpoint.open(dir.file("free.safetensors"))
        let logits = try #require(outputs.tensor(named: "logits"))
        let ids = try #require(try Checkpoint.open(inputs).tensor(named: "input_ids"))
        let expected = try OutputFile(creating: dir.file("expected.safetensors"))
        try SafetensorsWriter.write(
            [ids, logits].map { tensor in
                TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                    (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes)
                }
            }, metadata: [:], to: expected)
        try expected.close()
        let verified = try CLI.run(
            ["verify", model, "--expected", dir.file("expected.safetensors"), "--atol", "0", "--rtol", "0"],
            under: ["/bin/sh", "-c", "echo $$ > \(group)/cgroup.procs && exec \"$@\"", "sh"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        let failures = try String(contentsOfFile: group + "/memory.failcnt", encoding: .utf8)
        #expect((Int(failures.filter(\.isNumber)) ?? 0) > 0, "the limit was never reached")
    }
}
