import CHDF5
import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// How datasets are stored.
public enum HDF5Compression: Equatable, Sendable {
    case none
    /// Chunked datasets through the deflate filter, level 0...9.
    case gzip(level: Int)

    /// `gzip` or `gzip:LEVEL` (default level 4, as h5py's).
    public init?(_ text: String) {
        if text == "none" { self = .none; return }
        let parts = text.split(separator: ":", maxSplits: 1)
        guard parts.first == "gzip" else { return nil }
        guard parts.count == 2 else { self = .gzip(level: 4); return }
        guard let level = Int(parts[1]), (0...9).contains(level) else { return nil }
        self = .gzip(level: level)
    }
}

/// Writes tensors as HDF5 datasets: `a.b.c` becomes `/a/b/c`, metadata becomes variable-length
/// UTF-8 string attributes of the root group (as h5py writes `attrs[key] = str`). One tensor is in
/// memory at a time. The file is created with library-version bounds from 1.8, so large attribute
/// sets use dense storage.
public enum HDF5Writer {
    /// Bytes of one chunk at most, for compressed datasets.
    public static let chunkBytes = 1 << 20
    /// Bytes of one write at most: a tensor is written a bounded piece at a time.
    public static let writeBytes = 16 << 20

    /// Refuses names HDF5 cannot hold before anything is written: a tensor whose path is the group
    /// of another, and dtypes with no HDF5 representation.
    public static func check(_ tensors: [TensorToWrite]) throws(HDF5FormatError) {
        let names = Set(tensors.map(\.name))
        for tensor in tensors {
            let parts = tensor.name.split(separator: ".", omittingEmptySubsequences: false)
            for end in 1..<max(parts.count, 1) {
                let prefix = parts[0..<end].joined(separator: ".")
                if names.contains(prefix) {
                    throw .nameClash(tensor: prefix, group: parts[0..<end].joined(separator: "/"))
                }
            }
            if parts.contains(where: \.isEmpty) { throw .nameClash(tensor: tensor.name, group: tensor.name) }
            if [.f4, .f6E2M3, .f6E3M2].contains(tensor.dtype) { throw .cannotStore(tensor: tensor.name, dtype: tensor.dtype) }
        }
    }

    /// Writes a new file at `path` (which must not exist) and flushes it to disk.
    /// `chunkBytes` and `writeBytes` bound a chunk and one write (smaller in tests, to exercise the runs).
    ///
    /// libhdf5 can crash when a write fails (a full disk, say), so its calls run in a child
    /// process, where a crash is an error message and never takes moeckpt down. The producers run
    /// here, in the caller's process, one tensor after the other (their progress reports and
    /// integrity checks are the caller's): their bytes go to the child through a pipe, and it
    /// writes them into the datasets. A producer's error is thrown as is (the child is killed).
    public static func write(
        _ tensors: [TensorToWrite], metadata: [String: String], to path: String,
        compression: HDF5Compression, chunkBytes: Int = chunkBytes, writeBytes: Int = writeBytes
    ) throws(FileError) {
        do throws(HDF5FormatError) { try check(tensors) } catch { throw FileError(path: path, problem: error) }
        let outcome = try HDF5Sandbox.run(feeding: { (input: HDF5Sandbox.ChildInput) throws(FileError) in
            for tensor in tensors {
                let sink = PipeSink(input, tensor: tensor, path: path)
                try tensor.produce(sink)
                guard sink.bytesWritten == tensor.byteCount else {
                    throw FileError(path: path, problem: WriterInconsistency(tensor: tensor.name))
                }
            }
        }) { (input: Int32) -> String? in
            do {
                let source = PipeSource(input)
                try HDF5.locked { () throws in
                    try create(
                        tensors, metadata: metadata, path: path, compression: compression,
                        sizes: (chunkBytes, writeBytes), source: source)
                }
                return nil
            } catch let error as FileError {
                // A dataset's sink: its path is the dataset's, which a libhdf5 error names already.
                return error.problem is HDF5Error ? error.problem.description : "\(error.path): \(error.problem)"
            } catch {
                return "\(error)"
            }
        }
        switch outcome {
        case .safe: break
        case .failed(let message):
            throw FileError(path: path, problem: HDF5Error(operation: "write", reason: message))
        case .crashed(let signal):
            // A lost page of an input mapping (SIGBUS) is the input's problem, not the disk's. The
            // child reads no input (the producers run here, where moeckpt's SIGBUS handler names
            // the input, and a pipe write from a lost page fails with EFAULT, see PipeSink), but
            // it has the inputs' mappings, so a SIGBUS there is still read the same way.
            if signal == SIGBUS, let input = FileMapping.shrunkInput { throw FileError(path: input, problem: IOError.changedWhileReading) }
            throw FileError(
                path: path, problem: HDF5Error(operation: "write", reason: "libhdf5 crashed (signal \(signal)); is the disk full?"))
        case .timedOut, .unavailable:
            throw FileError(path: path, problem: HDF5Error(operation: "write", reason: "could not start the writer process"))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else { throw FileError(path: path, problem: IOError.cannotWrite(errnoText())) }
        close(fd)
    }

    private static func create(
        _ tensors: [TensorToWrite], metadata: [String: String], path: String,
        compression: HDF5Compression, sizes: (chunk: Int, write: Int), source: PipeSource
    ) throws {
        let access = try HDF5Handle(H5Pcreate(moeckpt_h5p_file_access()), "file access properties", close: H5Pclose)
        try HDF5.check(H5Pset_libver_bounds(access.id, H5F_LIBVER_V18, H5F_LIBVER_V110), "set library version bounds")
        let file = try HDF5Handle(H5Fcreate(path, moeckpt_h5f_acc_excl(), HDF5.defaultProperties, access.id), "create", close: H5Fclose)
        let links = try HDF5Handle(H5Pcreate(moeckpt_h5p_link_create()), "link properties", close: H5Pclose)
        try HDF5.check(H5Pset_create_intermediate_group(links.id, 1), "create intermediate groups")
        for tensor in tensors {
            try write(tensor, into: file.id, links: links.id, compression: compression, sizes: sizes, source: source)
        }
        for key in metadata.keys.sorted() {
            try writeString(metadata[key]!, attribute: key, on: file.id)
        }
        try HDF5.check(H5Fflush(file.id, H5F_SCOPE_GLOBAL), "flush")
    }

    private static func write(
        _ tensor: TensorToWrite, into file: hid_t, links: hid_t, compression: HDF5Compression,
        sizes: (chunk: Int, write: Int), source: PipeSource
    ) throws {
        let path = "/" + tensor.name.split(separator: ".").joined(separator: "/")
        let type = try HDF5Types.fileType(tensor.dtype)
        let space = try HDF5Handle(
            tensor.shape.isEmpty
                ? H5Screate(H5S_SCALAR)
                : H5Screate_simple(Int32(tensor.shape.count), tensor.shape.map { hsize_t($0) }, nil),
            "dataspace of \(path)", close: H5Sclose)
        let creation = try HDF5Handle(H5Pcreate(moeckpt_h5p_dataset_create()), "dataset properties", close: H5Pclose)
        // Chunks are runs of units of at most chunkBytes (one index along one axis, the later axes
        // whole); writes are whole runs of chunks, so no chunk is ever written twice.
        let slabs = HDF5Slabs(shape: tensor.shape, elementBytes: max(1, tensor.dtype.bits / 8), maxBytes: sizes.chunk)
        let chunkUnits = min(slabs.unitsPerRow, max(1, sizes.chunk / slabs.unitBytes))
        if case .gzip(let level) = compression, !tensor.shape.isEmpty, tensor.byteCount > 0 {
            var chunk = tensor.shape.map { hsize_t($0) }
            for axis in 0..<slabs.axis { chunk[axis] = 1 }
            chunk[slabs.axis] = hsize_t(chunkUnits)
            try HDF5.check(H5Pset_chunk(creation.id, Int32(chunk.count), chunk), "chunk \(path)")
            try HDF5.check(H5Pset_deflate(creation.id, UInt32(level)), "compress \(path)")
        }
        let dataset = try HDF5Handle(
            H5Dcreate2(file, path, type.id, space.id, links, creation.id, HDF5.defaultProperties),
            "create dataset \(path)", close: H5Dclose)
        if HDF5Types.needsDtypeAttribute(tensor.dtype) {
            try writeString(tensor.dtype.name, attribute: "dtype", on: dataset.id)
        }
        guard tensor.byteCount > 0 else { return }
        let runUnits = chunkUnits * max(1, sizes.write / (chunkUnits * slabs.unitBytes))
        let sink = try HDF5DatasetSink(dataset: dataset.id, type: type.id, slabs: slabs, runUnits: runUnits, path: path)
        try source.copy(tensor.byteCount, of: tensor.name, into: sink)
        guard sink.bytesWritten == tensor.byteCount else { throw WriterInconsistency(tensor: tensor.name) }
    }

    /// A scalar variable-length UTF-8 string attribute, as h5py writes `attrs[name] = "..."`.
    static func writeString(_ value: String, attribute name: String, on object: hid_t) throws {
        let type = try HDF5Handle(H5Tcopy(moeckpt_h5t_c_s1()), "string type", close: H5Tclose)
        try HDF5.check(H5Tset_size(type.id, moeckpt_h5t_variable()), "string type")
        try HDF5.check(H5Tset_cset(type.id, H5T_CSET_UTF8), "string type")
        let space = try HDF5Handle(H5Screate(H5S_SCALAR), "scalar dataspace", close: H5Sclose)
        let attribute = try HDF5Handle(
            H5Acreate2(object, name, type.id, space.id, HDF5.defaultProperties, HDF5.defaultProperties),
            "create attribute \(name)", close: H5Aclose)
        try value.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            try HDF5.check(H5Awrite(attribute.id, type.id, &pointer), "write attribute \(name)")
        }
    }
}

/// Receives a tensor's bytes in order and writes them to its dataset a run of whole units at a
/// time (a hyperslab, or the whole dataset for a scalar), holding one run in memory.
final class HDF5DatasetSink: ByteSink {
    private(set) var bytesWritten = 0
    private let dataset: hid_t
    private let type: hid_t
    private let slabs: HDF5Slabs
    private let runUnits: Int
    private let path: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var filled = 0
    private var nextUnit = 0

    init(dataset: hid_t, type: hid_t, slabs: HDF5Slabs, runUnits: Int, path: String) throws(FileError) {
        self.dataset = dataset
        self.type = type
        self.slabs = slabs
        self.runUnits = runUnits
        self.path = path
        do throws(MemoryError) { buffer = try MemoryBudget.allocate(runUnits * slabs.unitBytes) } catch {
            throw FileError(path: path, problem: error)
        }
    }

    deinit { free(buffer.baseAddress) }

    func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var offset = 0
        while offset < bytes.count {
            let run =
                nextUnit < slabs.totalUnits
                ? slabs.run(from: nextUnit, maxUnits: runUnits, limit: slabs.totalUnits)
                : nextUnit..<nextUnit
            let runBytes = run.count * slabs.unitBytes
            guard runBytes > 0 else { throw FileError(path: path, problem: WriterInconsistency(tensor: path)) }
            let n = min(runBytes - filled, bytes.count - offset)
            (buffer.baseAddress! + filled).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            filled += n
            offset += n
            if filled == runBytes {
                try flush(run)
                nextUnit = run.upperBound
                filled = 0
            }
        }
        bytesWritten += bytes.count
    }

    private func flush(_ run: Range<Int>) throws(FileError) {
        do {
            if slabs.shape.isEmpty {
                try HDF5.check(H5Dwrite(dataset, type, HDF5.all, HDF5.all, HDF5.defaultProperties, buffer.baseAddress), "write \(path)")
                return
            }
            let spaces = try slabs.spaces(of: run, in: dataset, path)
            try HDF5.check(
                H5Dwrite(dataset, type, spaces.memory.id, spaces.file.id, HDF5.defaultProperties, buffer.baseAddress),
                "write \(path)")
        } catch {
            throw FileError(path: path, problem: error)
        }
    }
}

/// In the caller's process: a producer's bytes for one tensor, sent to the writer child. More
/// bytes than the tensor has are refused before they reach the pipe (the child would take them
/// for the next tensor's).
final class PipeSink: ByteSink {
    private(set) var bytesWritten = 0
    private let input: HDF5Sandbox.ChildInput
    private let tensor: TensorToWrite
    private let path: String

    init(_ input: HDF5Sandbox.ChildInput, tensor: TensorToWrite, path: String) {
        self.input = input
        self.tensor = tensor
        self.path = path
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        guard bytes.count <= tensor.byteCount - bytesWritten else {
            throw FileError(path: path, problem: WriterInconsistency(tensor: tensor.name))
        }
        if let failure = input.write(bytes) {
            // The kernel could not read the source: an input mapping lost its pages.
            if failure.errno == EFAULT, let source = FileMapping.path(holding: bytes.baseAddress! + failure.written) {
                throw FileError(path: source, problem: IOError.changedWhileReading)
            }
            // EPIPE: the child stopped reading (it failed or crashed); HDF5Writer.write reports
            // what became of it instead of this error.
            throw FileError(path: path, problem: IOError.cannotWrite(String(cString: strerror(failure.errno))))
        }
        bytesWritten += bytes.count
    }
}

/// In the writer child: the bytes the caller's process sends, read a bounded piece at a time.
final class PipeSource {
    /// Bytes of one read at most.
    static let readBytes = 1 << 20
    private let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer?

    init(_ fd: Int32) { self.fd = fd }

    deinit { buffer.map { free($0.baseAddress) } }

    /// Reads the next `count` bytes and writes them into `sink`.
    func copy(_ count: Int, of tensor: String, into sink: any ByteSink) throws {
        guard count > 0 else { return }
        if buffer == nil { buffer = try MemoryBudget.allocate(Self.readBytes) }
        let buffer = buffer!
        var remaining = count
        while remaining > 0 {
            let n = read(fd, buffer.baseAddress, min(remaining, buffer.count))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw HDF5Error(
                    operation: "write \(tensor)", reason: n == 0 ? "its bytes ended early" : "cannot read its bytes: \(errnoText())")
            }
            try sink.write(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
            remaining -= n
        }
    }
}
