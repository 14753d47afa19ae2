import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// A convert reports its progress in the caller's process, whatever it writes: the total it
/// announces is what it then advances by, and what it writes (the HDF5 writer's producers run in
/// moeckpt's process and stream to the child that makes the libhdf5 calls).
struct ConvertProgressTests {
    final class Recorder: ProgressReporter {
        var totals: [Int] = []
        var advanced = 0
        var advances = 0
        var finished = 0
        func start(totalBytes: Int) { totals.append(totalBytes) }
        func advance(by bytes: Int) {
            advanced += bytes
            advances += 1
        }
        func finish() { finished += 1 }
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let output: String
        var maxShardBytes: Int?
        var compression = HDF5Compression.none
        var dtype: DType?
        var testDescription: String {
            output + (maxShardBytes.map { " shards of \($0)" } ?? "") + (compression == .none ? "" : " gzip")
                + (dtype.map { " as \($0.name)" } ?? "")
        }
    }

    static let cases: [Case] = [
        Case(output: "out.safetensors"),
        Case(output: "out", maxShardBytes: 25_000),
        Case(output: "out.h5"),
        Case(output: "out.h5", compression: .gzip(level: 4)),
        Case(output: "out.moeckpt"),
        Case(output: "out.h5", dtype: .bf16),
    ]

    @Test(arguments: cases)
    func theProgressTotalIsWhatIsAdvancedAndWritten(_ test: Case) throws {
        let dir = try TemporaryDirectory()
        let recorder = Recorder()
        let output = dir.file(test.output)
        let result = try Converter.convert(
            Fixtures.path("models/tiny-mixtral"), to: output,
            options: ConvertOptions(
                dtype: test.dtype, maxShardBytes: test.maxShardBytes, hdf5Compression: test.compression, progress: recorder))
        let written = try Checkpoint.open(output)
        let tensorBytes = written.tensors.reduce(0) { $0 + $1.byteCount }
        #expect(recorder.totals.count == 1 && recorder.finished == 1)
        let total = try #require(recorder.totals.first)
        #expect(total > 0)
        #expect(recorder.advanced == total, "advanced by \(recorder.advanced) of \(total)")
        #expect(recorder.advances >= written.tensors.count)
        #expect(tensorBytes == total)
        if test.output != "out.safetensors" {
            // For one safetensors file the result counts its header too.
            #expect(result.bytes == total)
        }
        if test.maxShardBytes != nil { #expect(result.files.count >= 2) }
        if test.dtype == .bf16 { #expect(written.tensors.allSatisfy { $0.dtype == .bf16 || !$0.dtype.isFloatingPoint }) }
    }
}
