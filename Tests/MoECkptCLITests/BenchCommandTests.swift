import Foundation
import MoECkptTestSupport
import Testing

/// `moeckpt bench` from the command line (what it reports, not how fast: speed is measured by the
/// benchmark itself, see docs/PERFORMANCE.md).
struct BenchCommandTests {
    @Test func timesACheckpointsBlockAndForwardPassAsJSON() throws {
        let result = try CLI.run([
            "bench", Fixtures.path("models/tiny-mixtral"), "--what", "both", "--tokens", "5",
            "--threads", "2", "--repeat", "3", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        let rows = try #require(parsed)
        #expect(rows.map { $0["name"] as? String } == ["moe-block", "forward"])
        for row in rows {
            #expect(row["tokens"] as? Int == 5 && row["repetitions"] as? Int == 3 && row["threads"] as? Int == 2)
            let (minimum, median, maximum) = (
                row["minimum"] as? Double ?? -1, row["median"] as? Double ?? -1, row["maximum"] as? Double ?? -1
            )
            #expect(0 < minimum && minimum <= median && median <= maximum)
            let (residentPeak, anonymousPeak) = (row["peak_rss"] as? Int ?? -1, row["peak_anon"] as? Int ?? -1)
            #expect(0 < anonymousPeak && anonymousPeak <= residentPeak)
        }
    }

    /// The default thread count is the CPUs the process may use: one under `taskset -c 0`.
    @Test func threadsDefaultToTheCPUsTheProcessMayUse() throws {
        let arguments = ["bench", "--what", "moe", "--hidden", "64", "--intermediate", "64", "--tokens", "1", "--repeat", "1", "--json"]
        let pinned = try CLI.run(arguments, under: ["/usr/bin/taskset", "-c", "0"])
        #expect(pinned.status == 0, "\(pinned.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(pinned.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.first?["threads"] as? Int == 1)
    }

    @Test func syntheticBF16WeightsAndTheMemoryBenchmarksRun() throws {
        let moe = try CLI.run([
            "bench", "--what", "moe", "--hidden", "64", "--intermediate", "96", "--experts", "4",
            "--tokens", "7", "--dtype", "bf16", "--repeat", "2",
        ])
        #expect(moe.status == 0 && moe.stdout.hasPrefix("synthetic bf16 weights: hidden 64, intermediate 96, 4 experts, top-2"))
        let cast = try CLI.run(["bench", "--what", "cast", "--tokens", "1", "--repeat", "2"])
        #expect(cast.status == 0 && cast.stdout.contains("cast-bf16-f32") && cast.stdout.contains("memcpy"))
    }

    @Test func refusesWhatItCannotTimeWithOneLine() throws {
        for arguments in [
            ["bench", Fixtures.path("models/basic_moe"), "--what", "moe"],
            [
                "bench", Fixtures.path("models/tiny-mixtral"), "--what", "moe", "--tokens", "3",
                "--inputs", Fixtures.path("safetensors/all_dtypes.safetensors"),
            ],
            ["bench", "--dtype", "f8"],
            ["bench", "--what", "moe", "--tokens", "100000000"],
            ["bench", "--what", "cast", "--tokens", "100000"],
        ] {
            let result = try CLI.run(arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("moeckpt: error: ") && result.stderr.filter { $0 == "\n" }.count == 1, "\(result.stderr)")
        }
    }
}
