import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt
@testable import MoECkptFormats

/// HDF5 files written by h5py (fixtures/hdf5, scripts/make_hdf5_fixtures.py): every dataset's
/// dtype, shape and bytes against what the script recorded (MANIFEST.json).
struct HDF5Tests {
    struct Entry: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let bytes_hex_sha256: String?
    }

    struct File: Decodable {
        let metadata: [String: String]?
        let tensors: [String: Entry]?
    }

    static let manifest: [String: File] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: Fixtures.path("hdf5/MANIFEST.json"))) else { return [:] }
        return (try? JSONDecoder().decode([String: File].self, from: data)) ?? [:]
    }()

    static var readableFiles: [String] { manifest.keys.filter { $0 != "unsupported.h5" }.sorted() }

    @Test func manifestCoversTheFixtures() {
        #expect(Self.readableFiles.count >= 10)
    }

    @Test(arguments: readableFiles)
    func everyDatasetReadsWithItsDtypeShapeAndBytes(file: String) throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("hdf5/" + file))
        #expect(checkpoint.format == .hdf5)
        let entries = try #require(Self.manifest[file]?.tensors)
        #expect(checkpoint.tensors.count == entries.count)
        for (path, entry) in entries {
            let tensor = try #require(checkpoint.tensor(named: entry.name), "\(file): \(path)")
            #expect(tensor.location == path)
            #expect(tensor.dtype.name == entry.dtype && tensor.shape == entry.shape, "\(file): \(path)")
            if let digest = entry.bytes_hex_sha256 {
                let actual = SHA256.hex(try tensor.load())
                #expect(actual == digest, "\(file): \(path) \(tensor.dtype.name)")
            }
        }
        if let metadata = Self.manifest[file]?.metadata { #expect(checkpoint.metadata == metadata) }
    }

    /// Streaming a dataset a few bytes at a time (hyperslabs of units along an inner axis, runs
    /// cut at row ends) gives the bytes h5py recorded, for whole tensors and for ranges inside them.
    @Test(arguments: readableFiles)
    func datasetsStreamedInSmallPiecesGiveTheSameBytes(file: String) throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("hdf5/" + file))
        let entries = try #require(Self.manifest[file]?.tensors)
        for (_, entry) in entries {
            let tensor = try #require(checkpoint.tensor(named: entry.name))
            let width = max(1, tensor.dtype.bits / 8)
            for chunk in [width, 8 * width, 52 * width, 4096] {
                var streamed: [UInt8] = []
                try tensor.storage.stream(tensor.offset..<(tensor.offset + tensor.byteCount), chunk: chunk, granule: width) {
                    (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    #expect(bytes.count <= max(chunk, width) && bytes.count % width == 0)
                    streamed += bytes
                }
                if let digest = entry.bytes_hex_sha256 { #expect(SHA256.hex(streamed) == digest, "\(file) \(entry.name) chunk \(chunk)") }
                // A range that starts and ends inside units.
                let elements = tensor.byteCount / width
                guard elements > 2 else { continue }
                var part: [UInt8] = []
                try tensor.storage.stream((tensor.offset + width)..<(tensor.offset + (elements - 1) * width), chunk: chunk, granule: width)
                {
                    (bytes: UnsafeRawBufferPointer) throws(FileError) in part += bytes
                }
                #expect(part == Array(streamed[width..<((elements - 1) * width)]), "\(file) \(entry.name) chunk \(chunk)")
            }
        }
    }

    /// Writing in runs of a few bytes, into chunks of a few bytes (gzip) or contiguous datasets,
    /// gives files libhdf5 reads back to the same bytes.
    @Test(arguments: [HDF5Compression.none, .gzip(level: 4)])
    func datasetsWrittenInSmallRunsReadBackExactly(compression: HDF5Compression) throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("hdf5/nested.h5"))
        let tensors = source.tensors.map { tensor in
            TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                (sink: any ByteSink) throws(FileError) in
                // In uneven pieces, as a cast would deliver them.
                let bytes = try tensor.load()
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + 7)
                    try sink.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    start = end
                }
            }
        }
        for (chunk, write) in [(16, 48), (64, 64), (1 << 20, 16 << 20)] {
            let output = dir.file("out-\(chunk)-\(write).h5")
            try HDF5Writer.write(tensors, metadata: [:], to: output, compression: compression, chunkBytes: chunk, writeBytes: write)
            let back = try Checkpoint.open(output)
            for tensor in source.tensors {
                let copy = try #require(back.tensor(named: tensor.name))
                #expect(try copy.shape == tensor.shape && Array(copy.load()) == Array(tensor.load()), "\(tensor.name) \(chunk)/\(write)")
            }
        }
    }

    @Test func unsupportedTypesAreRefusedNamingTheDataset() throws {
        #expect {
            _ = try Checkpoint.open(Fixtures.path("hdf5/unsupported.h5"))
        } throws: { error in
            guard let problem = (error as? FileError)?.problem as? HDF5FormatError,
                case .unsupportedType(let dataset, _) = problem
            else { return false }
            return dataset.hasPrefix("/")
        }
    }

    /// `hdf5-fuzz/invalid-free.h5` made libhdf5 free an invalid pointer inside H5Lvisit under the
    /// address sanitizer (scripts/fuzz.sh FuzzHDF5); moeckpt walks structures in a child process.
    @Test(arguments: [
        "hdf5/malformed/empty.h5", "hdf5/malformed/not_hdf5.h5", "hdf5/malformed/random.h5",
        "hdf5/malformed/signature_only.h5", "hdf5/malformed/truncated.h5", "hdf5-fuzz/invalid-free.h5",
    ])
    func malformedFilesFailWithOneLine(file: String) throws {
        let path = Fixtures.path(file)
        do {
            _ = try Checkpoint.open(path)
            Issue.record("\(file) opened")
        } catch {
            #expect(error.path == path && !error.description.contains("\n"))
        }
    }

    /// Round trips through every other format and back, bit-exact.
    @Test(arguments: readableFiles.filter { !$0.contains("keras") })
    func convertsToSafetensorsAndBackExactly(file: String) throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("hdf5/" + file))
        _ = try Converter.convert(source.path, to: dir.file("a.safetensors"))
        for compression in [HDF5Compression.none, .gzip(level: 6)] {
            let out = dir.file("b-\(compression == .none ? "plain" : "gzip").h5")
            _ = try Converter.convert(dir.file("a.safetensors"), to: out, options: ConvertOptions(hdf5Compression: compression))
            let back = try Checkpoint.open(out)
            #expect(back.metadata == source.metadata.merging(["format": "pt"]) { old, _ in old })
            for tensor in source.tensors {
                let copy = try #require(back.tensor(named: tensor.name))
                #expect(copy.dtype == tensor.dtype && copy.shape == tensor.shape)
                let (a, b) = (Array(try copy.load()), Array(try tensor.load()))
                #expect(a == b, "\(tensor.name)")
            }
        }
    }

    @Test func everySafetensorsDtypeButThePackedOnesGoesToHDF5AndBack() throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("safetensors/all_dtypes.safetensors"))
        // F4 (packed) cannot be written: the error names it, and nothing is left behind.
        #expect(throws: FileError.self) { _ = try Converter.convert(source.path, to: dir.file("all.h5")) }
        #expect(dir.contents().isEmpty)
        // Without it, every dtype round-trips.
        let tensors = source.tensors.filter { $0.dtype != .f4 }.map { tensor in
            TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes)
            }
        }
        try HDF5Writer.write(tensors, metadata: ["format": "pt"], to: dir.file("all.h5"), compression: .none)
        let back = try Checkpoint.open(dir.file("all.h5"))
        for tensor in source.tensors where tensor.dtype != .f4 {
            let copy = try #require(back.tensor(named: tensor.name))
            let bytes = Array(try copy.load())
            #expect(copy.dtype == tensor.dtype && bytes == Array(tensor.bytes), "\(tensor.name)")
        }
    }

    // The writer: producers run in the caller's process and stream their bytes to the child
    // that makes the libhdf5 calls.

    /// The children of this process that exist (zombies included), from /proc.
    static func children() -> Set<Int32> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var pids = Set<Int32>()
        for task in tasks {
            let text = (try? String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8)) ?? ""
            pids.formUnion(text.split(separator: " ").compactMap { Int32($0) })
        }
        return pids
    }

    /// Tensors of `source` whose producers write in pieces of `piece` bytes and call `observe`
    /// with each piece's size (in the process that runs them).
    static func streamed(
        _ source: Checkpoint, piece: Int = 1000, observe: @escaping (String, Int) throws(FileError) -> Void
    )
        -> [TensorToWrite]
    {
        source.tensors.map { tensor in
            TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                (sink: any ByteSink) throws(FileError) in
                let bytes = try tensor.load()
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + piece)
                    try observe(tensor.name, end - start)
                    try sink.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    start = end
                }
            }
        }
    }

    @Test(arguments: [HDF5Compression.none, .gzip(level: 4)])
    func producersRunInTheCallersProcess(compression: HDF5Compression) throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("models/tiny-mixtral/model.safetensors"))
        final class Counter { var bytes = 0; var elsewhere = 0 }
        let counter = Counter()
        let me = getpid()
        let tensors = Self.streamed(source) { _, count in
            counter.bytes += count
            if getpid() != me { counter.elsewhere += 1 }
        }
        let before = Self.children()
        try HDF5Writer.write(tensors, metadata: ["format": "pt"], to: dir.file("out.h5"), compression: compression)
        #expect(counter.bytes == tensors.reduce(0) { $0 + $1.byteCount } && counter.bytes > 0)
        #expect(counter.elsewhere == 0)
        #expect(Self.children().isSubset(of: before))
        let back = try Checkpoint.open(dir.file("out.h5"))
        #expect(back.metadata == ["format": "pt"] && back.tensors.count == source.tensors.count)
        for tensor in source.tensors {
            let copy = try #require(back.tensor(named: tensor.name))
            #expect(copy.dtype == tensor.dtype && copy.shape == tensor.shape)
            #expect(Array(try copy.load()) == Array(tensor.bytes), "\(tensor.name)")
        }
    }

    /// An input found damaged while its bytes are produced: its error, naming the input, is what
    /// `write` throws; the child is killed and reaped.
    @Test func aProducersErrorIsThrownAsIsAndTheChildIsReaped() throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("models/tiny-mixtral/model.safetensors"))
        let damaged = source.tensors[source.tensors.count / 2].name
        let input = "/elsewhere/input.moeckpt"
        let tensors = Self.streamed(source, piece: 64) { (name, _) throws(FileError) in
            if name == damaged { throw FileError(path: input, problem: IOError.changedWhileReading) }
        }
        let before = Self.children()
        do {
            try HDF5Writer.write(tensors, metadata: [:], to: dir.file("out.h5"), compression: .gzip(level: 4))
            Issue.record("the producer's error was not thrown")
        } catch {
            #expect(error.path == input)
            #expect(error.problem as? IOError == .changedWhileReading)
            #expect(error.description == "\(input): \(IOError.changedWhileReading)")
        }
        #expect(Self.children().isSubset(of: before), "children left: \(Self.children().subtracting(before))")
        #expect(InterruptCleanup.child == 0)
    }

    /// A producer that hands the pipe a mapping whose file was truncated: the kernel cannot read
    /// the lost pages (EFAULT, no SIGBUS), and the error names the input.
    @Test func anInputTruncatedUnderItsMappingIsNamed() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("input.bin")
        let size = 4 << 20
        #expect(FileManager.default.createFile(atPath: input, contents: Data(repeating: 7, count: size)))
        let mapping = try FileMapping(path: input)
        #expect(truncate(input, 0) == 0)
        let tensor = TensorToWrite(name: "t", dtype: .u8, shape: [size], byteCount: size) { (sink: any ByteSink) throws(FileError) in
            try sink.write(mapping.bytes)
        }
        let before = Self.children()
        #expect {
            try HDF5Writer.write([tensor], metadata: [:], to: dir.file("out.h5"), compression: .none)
        } throws: { error in
            guard let error = error as? FileError else { return false }
            return error.path == input && error.problem as? IOError == .changedWhileReading
        }
        #expect(Self.children().isSubset(of: before))
    }

    /// A child that fails while the producer is still sending (here: it cannot create the file)
    /// breaks the pipe; its message is what `write` throws, and SIGPIPE does not end the caller.
    @Test func theChildsErrorIsReportedWhenItStopsReading() throws {
        let dir = try TemporaryDirectory()
        var previous = sigaction()
        var fatal = sigaction()
        fatal.__sigaction_handler.sa_handler = SIG_DFL
        sigaction(SIGPIPE, &fatal, &previous)
        defer { sigaction(SIGPIPE, &previous, nil) }
        let size = 8 << 20  // more than the pipe holds
        let big = TensorToWrite(name: "big", dtype: .u8, shape: [size], byteCount: size) { (sink: any ByteSink) throws(FileError) in
            let zeros = [UInt8](repeating: 0, count: size)
            try sink.write(zeros)
        }
        let before = Self.children()
        let output = dir.file("missing/out.h5")
        #expect {
            try HDF5Writer.write([big], metadata: [:], to: output, compression: .none)
        } throws: { error in
            guard let error = error as? FileError, let problem = error.problem as? HDF5Error else { return false }
            return error.path == output && problem.operation == "write" && problem.reason.hasPrefix("create")
        }
        #expect(Self.children().isSubset(of: before))
    }

    /// A child that crashes mid-write is reported as a crash of libhdf5, as before.
    @Test(arguments: [false, true])
    func aCrashOfTheChildIsReported(atOnce: Bool) throws {
        let dir = try TemporaryDirectory()
        let size = 4 << 20  // more than the pipe holds: when its write returns, the child is reading
        let tensors = ["a", "b"].map { name in
            TensorToWrite(name: name, dtype: .u8, shape: [size], byteCount: size) { (sink: any ByteSink) throws(FileError) in
                // At once: the signal may reach the child before it has set itself up; it waits.
                if name == (atOnce ? "a" : "b") { kill(InterruptCleanup.child, SIGSEGV) }
                try sink.write([UInt8](repeating: 1, count: size))
            }
        }
        let before = Self.children()
        #expect {
            try HDF5Writer.write(tensors, metadata: [:], to: dir.file("out.h5"), compression: .none)
        } throws: { error in
            guard let error = error as? FileError else { return false }
            return error.path == dir.file("out.h5") && "\(error.problem)".contains("libhdf5 crashed (signal \(SIGSEGV))")
        }
        #expect(Self.children().isSubset(of: before))
    }

    /// An HDF5 input read through libhdf5 on demand (chunked, compressed datasets) while the
    /// writer child writes HDF5: the producers take the libhdf5 lock in the caller's process.
    @Test(.timeLimit(.minutes(1)))
    func hdf5ConvertsToHDF5WithoutDeadlock() throws {
        let dir = try TemporaryDirectory()
        let original = Fixtures.path("hdf5/tiny-mixtral/model.h5")
        _ = try Converter.convert(original, to: dir.file("a.h5"))
        _ = try Converter.convert(dir.file("a.h5"), to: dir.file("gzip.h5"), options: ConvertOptions(hdf5Compression: .gzip(level: 4)))
        // Datasets larger than a copy's chunk are streamed in hyperslabs through libhdf5.
        _ = try Converter.convert(Fixtures.path("hdf5/chunked.h5"), to: dir.file("chunked.h5"))
        _ = try Converter.convert(dir.file("gzip.h5"), to: dir.file("b.h5"), options: ConvertOptions(dtype: .bf16))
        _ = try Converter.convert(dir.file("gzip.h5"), to: dir.file("c.h5"))
        let source = try Checkpoint.open(original)
        for file in ["a.h5", "gzip.h5", "c.h5"] {
            let back = try Checkpoint.open(dir.file(file))
            #expect(back.tensors.count == source.tensors.count)
            for tensor in source.tensors {
                let copy = try #require(back.tensor(named: tensor.name))
                #expect(Array(try copy.load()) == Array(try tensor.load()), "\(file) \(tensor.name)")
            }
        }
        #expect(try Checkpoint.open(dir.file("b.h5")).tensors.count == source.tensors.count)
    }

    @Test func theMixtralInHDF5VerifiesLikeTheOriginal() throws {
        let report = try Verifier.verify(Fixtures.path("hdf5/tiny-mixtral"))
        #expect(report.passed)
    }

    @Test func kerasFilesListTheirWeightsWithPathsAndAttributes() throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("hdf5/keras/legacy-keras2-200layers.h5"))
        let report = Inspector.report(checkpoint)
        #expect(report.tensors.allSatisfy { $0.path?.hasPrefix("/") == true })
        #expect(report.attributes.contains { $0.object == "/" && $0.name == "layer_names" && $0.value.hasPrefix("200 strings") })
    }
}
