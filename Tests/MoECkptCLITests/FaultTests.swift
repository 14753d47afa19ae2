import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// Full disks, read-only destinations, outputs in the input's shard directory (inputs truncated
/// while mapped: HostileInputTests). Mounting a small tmpfs needs root and a mount-capable
/// sandbox; where that is impossible those two tests are skipped and say so.
@Suite(.serialized)
struct FaultTests {
    static let canMount: Bool = {
        guard geteuid() == 0 else { return false }
        return (try? SmallDisk(size: "16k")) != nil
    }()

    /// A tmpfs of `size` mounted on a fresh directory for the test's duration.
    final class SmallDisk {
        let path: String
        init(size: String, readOnly: Bool = false) throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("moeckpt-disk-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let options = "size=\(size)" + (readOnly ? ",ro" : "")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/mount")
            process.arguments = ["-t", "tmpfs", "-o", options, "tmpfs", path]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                try? FileManager.default.removeItem(atPath: path)
                throw CocoaError(.fileWriteNoPermission)
            }
        }
        deinit {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/umount")
            process.arguments = [path]
            try? process.run()
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: path)
        }
        func contents() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }
    }

    @Test(.enabled(if: canMount, "mounting a small tmpfs needs root and a sandbox that allows mount"))
    func aFullDiskGivesAClearErrorAndLeavesNothing() throws {
        let disk = try SmallDisk(size: "40k")
        let input = Fixtures.path("models/tiny-mixtral/model.safetensors")  // 69 KB
        for output in ["out.safetensors", "out.h5", "out.moeckpt", "sharded"] {
            let result = try CLI.run(["convert", input, disk.path + "/" + output, "--quiet"])
            #expect(result.status == 2, "\(output)")
            #expect(result.stderr.contains("No space left on device") || result.stderr.contains("space"), "\(output): \(result.stderr)")
            #expect(disk.contents().isEmpty, "\(output) left \(disk.contents())")
        }
    }

    @Test(.enabled(if: canMount, "mounting a read-only tmpfs needs root and a sandbox that allows mount"))
    func aReadOnlyDestinationIsRefused() throws {
        let disk = try SmallDisk(size: "1m", readOnly: true)
        let result = try CLI.run(["convert", Fixtures.path("models/tiny-mixtral"), disk.path + "/out.safetensors"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("Read-only file system"))
    }

    @Test func writingIntoTheShardDirectoryBeingReadIsRefused() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(
            Fixtures.path("models/tiny-mixtral"), to: dir.file("ckpt"), options: ConvertOptions(maxShardBytes: 30_000))
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.file("ckpt")).sorted()
        for output in ["ckpt/joined.safetensors", "ckpt/sub/joined.safetensors"] {
            try? FileManager.default.createDirectory(atPath: dir.file("ckpt/sub"), withIntermediateDirectories: true)
            let result = try CLI.run(["convert", dir.file("ckpt"), dir.file(output)])
            #expect(result.status == 2 && result.stderr.contains("the directory of the sharded checkpoint being read"))
            try? FileManager.default.removeItem(atPath: dir.file("ckpt/sub"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("ckpt")).sorted() == before)
    }
}
