import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// A convert that is killed or interrupted never leaves an output file and never touches its input.
@Suite(.serialized)
struct InterruptionTests {
    /// A 128 MiB checkpoint of 32 F32 tensors, big enough that a convert takes a while.
    static func makeLargeInput(at path: String) throws {
        let tensorBytes = 4 << 20
        let pattern = (0..<(tensorBytes / 4)).map { Float($0 % 1000) * 0.001 }
        let tensors = (0..<32).map { i in
            TensorToWrite(name: "layers.\(i).weight", dtype: .f32, shape: [1024, 1024], byteCount: tensorBytes) {
                (file: any ByteSink) throws(FileError) in
                let result = pattern.withUnsafeBytes { raw in Result { () throws(FileError) in try file.write(raw) } }
                try result.get()
            }
        }
        let file = try OutputFile(creating: path)
        try SafetensorsWriter.write(tensors, metadata: [:], to: file)
        try file.close()
    }

    @Test func killedAtAnyPointLeavesNoOutputAndAnUnchangedInput() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("in.safetensors")
        let output = dir.file("out.safetensors")
        try Self.makeLargeInput(at: input)
        let inputHash = try CLI.sha256(input)

        var killedMidway = 0
        for delay in [0.005, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5] {
            let process = try CLI.start(["convert", input, output, "--dtype", "bf16", "--quiet"])
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal {
                #expect(!FileManager.default.fileExists(atPath: output), "output exists after a kill at \(delay) s")
                killedMidway += 1
            } else {
                // It finished before the kill: then the output must be whole.
                #expect(process.terminationStatus == 0)
                #expect(try Checkpoint.open(output).tensors.count == 32)
                try FileManager.default.removeItem(atPath: output)
            }
        }
        #expect(killedMidway > 0, "no kill landed before the convert finished; the test proves nothing")
        #expect(try CLI.sha256(input) == inputHash)

        // Leftovers are recognisable, and the next convert to the same destination removes them.
        #expect(dir.contents().allSatisfy { $0 == "in.safetensors" || $0.hasPrefix(".out.safetensors.moeckpt-partial-") })
        let result = try CLI.run(["convert", input, output, "--quiet"])
        #expect(result.status == 0)
        #expect(dir.contents() == ["in.safetensors", "out.safetensors"])
        let (original, copy) = (try Checkpoint.open(input), try Checkpoint.open(output))
        #expect(copy.tensors.count == 32 && copy.metadata == ["format": "pt"])
        for (a, b) in zip(original.tensors, copy.tensors) {
            #expect(a.name == b.name && memcmp(a.bytes.baseAddress!, b.bytes.baseAddress!, a.byteCount) == 0)
        }
    }

    @Test func interruptedWithSIGINTRemovesItsTemporaryOutput() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("in.safetensors")
        try Self.makeLargeInput(at: input)
        for (output, extra) in [(dir.file("out.safetensors"), [String]()), (dir.file("sharded"), ["--max-shard-size", "20MB"])] {
            let process = try CLI.start(["convert", input, output, "--dtype", "f16"] + extra)
            Thread.sleep(forTimeInterval: 0.05)
            kill(process.processIdentifier, SIGINT)
            process.waitUntilExit()
            if process.terminationReason == .uncaughtSignal {
                #expect(dir.contents() == ["in.safetensors"])
            }
        }
    }
}
