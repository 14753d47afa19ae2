import Foundation
import MoECkptTestSupport
import Testing
@testable import MoECkpt

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
                try tensor.storage.stream((tensor.offset + width)..<(tensor.offset + (elements - 1) * width), chunk: chunk, granule: width) {
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
                  case .unsupportedType(let dataset, _) = problem else { return false }
            return dataset.hasPrefix("/")
        }
    }

    /// `hdf5-fuzz/invalid-free.h5` made libhdf5 free an invalid pointer inside H5Lvisit under the
    /// address sanitizer (scripts/fuzz.sh FuzzHDF5); moeckpt walks structures in a child process.
    @Test(arguments: ["hdf5/malformed/empty.h5", "hdf5/malformed/not_hdf5.h5", "hdf5/malformed/random.h5",
                      "hdf5/malformed/signature_only.h5", "hdf5/malformed/truncated.h5", "hdf5-fuzz/invalid-free.h5"])
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
