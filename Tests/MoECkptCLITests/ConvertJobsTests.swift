import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// `convert --plan` / `--job` / `--finish` (issue 18): a conversion fanned out as one process per
/// output shard gives the bytes one `convert` gives, and `--finish` accepts only finished jobs.
struct ConvertJobsTests {
    static let fixture = Fixtures.path("models/families/qwen3_moe")
    static let options = ["--max-shard-size", "20KB", "--dtype", "bf16", "--quiet"]

    /// Every file of `a` and `b` (recursively), name for name and byte for byte.
    static func sameFiles(_ a: String, _ b: String) throws -> Bool {
        let names = Set(try FileManager.default.subpathsOfDirectory(atPath: a))
        guard names == Set(try FileManager.default.subpathsOfDirectory(atPath: b)) else { return false }
        return try names.allSatisfy { try fileBytes(a + "/" + $0) == fileBytes(b + "/" + $0) }
    }

    static func plan(in dir: TemporaryDirectory) throws -> Int {
        let planned = try CLI.run(["convert", fixture, dir.file("out"), "--plan", dir.file("plan.json")] + options)
        #expect(planned.status == 0, "\(planned.stderr)")
        let plan = try JSONSerialization.jsonObject(with: fileBytes(dir.file("plan.json"))) as? [String: Any]
        return (plan?["jobs"] as? [Any])?.count ?? 0
    }

    @Test func jobsInParallelProcessesWriteWhatOneConvertWrites() throws {
        let dir = try TemporaryDirectory()
        #expect(try CLI.run(["convert", Self.fixture, dir.file("single")] + Self.options).status == 0)
        let jobs = try Self.plan(in: dir)
        #expect(jobs == 4)
        // All at once, last first; one through the scheduler's variable.
        let processes = try (1..<jobs).reversed().map { try CLI.start(["convert", "--plan", dir.file("plan.json"), "--job", "\($0)"]) }
        let slurm = try CLI.run(
            ["convert", "--plan", dir.file("plan.json"), "--job", "auto"], under: ["/usr/bin/env", "SLURM_ARRAY_TASK_ID=0"])
        #expect(slurm.status == 0 && slurm.stdout.hasPrefix("job 0: wrote model-00001-of-00004.safetensors"), "\(slurm.stderr)")
        for process in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
        }
        let finished = try CLI.run(["convert", "--plan", dir.file("plan.json"), "--finish"])
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(try Self.sameFiles(dir.file("single"), dir.file("out")))
    }

    /// A job whose record is missing (killed between its shard and its record, or never run) is
    /// named by --finish, which writes nothing; running it again completes the conversion.
    @Test func finishAcceptsOnlyFinishedJobs() throws {
        let dir = try TemporaryDirectory()
        let jobs = try Self.plan(in: dir)
        for job in 0..<jobs where job != 2 {
            #expect(try CLI.run(["convert", "--plan", dir.file("plan.json"), "--job", "\(job)"]).status == 0)
        }
        // Each record holds its shard's size and CRC-32C (taken as the shard was written).
        for job in 0..<jobs where job != 2 {
            let shard = dir.file("out/model-0000\(job + 1)-of-00004.safetensors")
            let record =
                try JSONSerialization.jsonObject(
                    with: fileBytes(dir.file("out/.moeckpt-jobs/model-0000\(job + 1)-of-00004.safetensors.json"))) as? [String: Any]
            let bytes = try fileBytes(shard)
            #expect(record?["size"] as? Int == bytes.count)
            #expect(record?["crc32c"] as? String == CRC32C.hex(bytes.withUnsafeBytes { CRC32C.checksum($0) }), "\(record ?? [:])")
        }
        var finished = try CLI.run(["convert", "--plan", dir.file("plan.json"), "--finish"])
        #expect(finished.status == 2 && finished.stderr.contains("job 2 has not finished"), "\(finished.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out/model.safetensors.index.json")))
        // A shard without its record (a job killed after its rename) is not accepted either.
        #expect(try CLI.run(["convert", "--plan", dir.file("plan.json"), "--job", "2"]).status == 0)
        try FileManager.default.removeItem(atPath: dir.file("out/.moeckpt-jobs/model-00002-of-00004.safetensors.json"))
        finished = try CLI.run(["convert", "--plan", dir.file("plan.json"), "--finish"])
        #expect(finished.status == 2 && finished.stderr.contains("job 1 has not finished"), "\(finished.stderr)")
        #expect(try CLI.run(["convert", "--plan", dir.file("plan.json"), "--job", "1"]).status == 0)
        finished = try CLI.run(["convert", "--plan", dir.file("plan.json"), "--finish"])
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out/.moeckpt-jobs")))
    }

    @Test func refusalsAreOneLineWithStatusTwo() throws {
        let dir = try TemporaryDirectory()
        _ = try Self.plan(in: dir)
        for arguments in [
            ["convert", "--plan", dir.file("plan.json"), "--job", "9"],
            ["convert", "--plan", dir.file("plan.json"), "--job", "auto"],
            ["convert", "--plan", dir.file("missing.json"), "--finish"],
            ["convert", Self.fixture, dir.file("one.safetensors"), "--plan", dir.file("p2.json")],
            ["convert", "--job", "0"],
            ["convert", Self.fixture, dir.file("x"), "--plan", dir.file("plan.json"), "--finish"],
        ] {
            let result = try CLI.run(arguments, under: ["/usr/bin/env", "-u", "SLURM_ARRAY_TASK_ID"])
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("moeckpt: error: ") && result.stderr.filter { $0 == "\n" }.count == 1, "\(result.stderr)")
        }
    }
}
