import CHDF5
import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// Reads HDF5 checkpoints through libhdf5: every dataset, at any depth, is a tensor named by its
/// path with `/` turned into `.`; string attributes of the root group are the metadata. Opening
/// reads the file's structure only; each dataset is read, straight into its own buffer, when a
/// tensor's bytes are first needed.
public enum HDF5File {
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// An HDF5 signature at offset 0 (files with a user block have it at 512, 1024, ...), or an
    /// HDF5 file extension.
    public static func isHDF5(_ path: String) -> Bool {
        if path.hasSuffix(".h5") || path.hasSuffix(".hdf5") || path.hasSuffix(".keras") { return true }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        return pread(fd, &head, 8, 0) == 8 && head == signature
    }

    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        switch HDF5Sandbox.run({ probe(path) }) {
        case .crashed(let signal):
            throw FileError(path: path, problem: HDF5FormatError.libraryCrashed(signal: signal))
        case .timedOut:
            throw FileError(path: path, problem: HDF5FormatError.libraryTimedOut)
        case .safe, .failed, .unavailable:
            break
        }
        do {
            return try HDF5.locked { () throws -> Checkpoint in try read(path) }
        } catch let error as FileError {
            throw error
        } catch let error as HDF5Error {
            throw FileError(path: path, problem: error)
        } catch let error as HDF5FormatError {
            throw FileError(path: path, problem: error)
        } catch {
            throw FileError(path: path, problem: HDF5Error(operation: "read", reason: "\(error)"))
        }
    }

    /// What the sandboxed child does: everything `open` does, and for small files every read.
    private static func probe(_ path: String) {
        guard let checkpoint = try? HDF5.locked({ () throws -> Checkpoint in try read(path) }) else { return }
        guard checkpoint.tensors.reduce(0, { $0 + $1.byteCount }) <= HDF5Sandbox.fullReadLimit else { return }
        for tensor in checkpoint.tensors { _ = try? tensor.load() }
    }

    private static func read(_ path: String) throws -> Checkpoint {
        // The same checks as any input (exists, regular file); contiguous datasets are used in place.
        let mapping = try FileMapping(path: path)
        guard H5Fis_hdf5(path) > 0 else {
            H5Eclear2(moeckpt_h5e_default())
            throw HDF5FormatError.notHDF5
        }
        let file = try HDF5Handle(H5Fopen(path, moeckpt_h5f_acc_rdonly(), HDF5.defaultProperties), "open", close: H5Fclose)
        let root = try HDF5Handle(H5Gopen2(file.id, "/", HDF5.defaultProperties), "open the root group", close: H5Gclose)
        let (metadata, rootAttributes) = try attributes(of: root.id, object: "/")
        var attributes = rootAttributes
        var tensors: [StoredTensor] = []
        var locations: [String: String] = [:]  // tensor name -> dataset path
        for link in try links(file.id) {
            let object = try HDF5Handle(H5Oopen(file.id, link, HDF5.defaultProperties), "open \(link)", close: H5Oclose)
            let (strings, others) = try Self.attributes(of: object.id, object: "/" + link)
            attributes +=
                others + strings.sorted { $0.key < $1.key }.map { CheckpointAttribute(object: "/" + link, name: $0.key, value: $0.value) }
            guard H5Iget_type(object.id) == H5I_DATASET else { continue }
            let tensor = try dataset(file, path, mapping, link, object.id, declared: strings["dtype"])
            if let first = locations.updateValue("/" + link, forKey: tensor.name) {
                throw HDF5FormatError.nameCollision(tensor: tensor.name, first: first, second: "/" + link)
            }
            tensors.append(tensor)
        }
        return Checkpoint(path: path, format: .hdf5, tensors: tensors, metadata: metadata, files: [path], attributes: attributes)
    }

    /// Every hard link below the root, recursively, in name order. External links are refused;
    /// soft links are skipped (their target is reached by its own hard link).
    private static func links(_ file: hid_t) throws -> [String] {
        final class Box { var names: [String] = []; var external: String? }
        let box = Box()
        let visit: H5L_iterate_t = { _, name, info, data in
            guard let name, let info, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            switch info.pointee.type {
            case H5L_TYPE_HARD: box.names.append(String(cString: name))
            case H5L_TYPE_EXTERNAL: box.external = String(cString: name); return 1
            default: break
            }
            return 0
        }
        try HDF5.check(H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, Unmanaged.passUnretained(box).toOpaque()), "list objects")
        if let external = box.external { throw HDF5FormatError.externalLink("/" + external) }
        return box.names
    }

    private static func dataset(
        _ file: HDF5Handle, _ filePath: String, _ mapping: FileMapping, _ link: String, _ id: hid_t,
        declared: String?
    ) throws -> StoredTensor {
        let name = link.split(separator: "/").joined(separator: ".")
        let type = try HDF5Handle(H5Dget_type(id), "read the type of /\(link)", close: H5Tclose)
        guard let dtype = HDF5Types.dtype(of: type.id, declared: declared) else {
            throw HDF5FormatError.unsupportedType(dataset: "/" + link, type: HDF5Types.describe(type.id))
        }
        let space = try HDF5Handle(H5Dget_space(id), "read the shape of /\(link)", close: H5Sclose)
        let rank = H5Sget_simple_extent_ndims(space.id)
        guard rank >= 0, H5Sget_simple_extent_type(space.id) != H5S_NULL else {
            throw HDF5FormatError.unsupportedDataspace(dataset: "/" + link)
        }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        try HDF5.check(H5Sget_simple_extent_dims(space.id, &dims, nil), "read the dimensions of /\(link)")
        guard dims.allSatisfy({ $0 < hsize_t(Int.max) }) else { throw HDF5FormatError.unsupportedDataspace(dataset: "/" + link) }
        let shape = dims.map { Int($0) }
        let byteCount: Int
        do {
            byteCount = try Shape.byteCount(shape, dtype: dtype)
        } catch {
            throw HDF5Error(operation: "dataset /\(link)", reason: "shape \(shape) is too large")
        }
        let littleEndian = H5Tget_order(type.id) != H5T_ORDER_BE
        let creation = try HDF5Handle(H5Dget_create_plist(id), "read the properties of /\(link)", close: H5Pclose)
        guard H5Pget_external_count(creation.id) == 0 else { throw HDF5FormatError.externalData("/" + link) }
        if H5Pget_layout(creation.id) == H5D_VIRTUAL { try refuseOtherFileSources(creation.id, dataset: "/" + link) }
        // Contiguous, unfiltered little-endian data is stored exactly as moeckpt holds it: map it
        // in place instead of reading it (zero-copy, like safetensors).
        if littleEndian, H5Pget_layout(creation.id) == H5D_CONTIGUOUS, H5Pget_nfilters(creation.id) == 0, byteCount > 0 {
            let address = H5Dget_offset(id)
            let fileSize = haddr_t(mapping.bytes.count)
            if address != moeckpt_haddr_undef(), address < fileSize, haddr_t(byteCount) <= fileSize - address {
                return StoredTensor(
                    name: name, dtype: dtype, shape: shape, byteCount: byteCount, storage: mapping, offset: Int(address),
                    location: "/" + link)
            }
        }
        H5Eclear2(moeckpt_h5e_default())
        // libhdf5 holds a whole chunk in memory to read any part of it (and a compressed one twice).
        var chunkBytes = 0
        if H5Pget_layout(creation.id) == H5D_CHUNKED {
            var chunk = [hsize_t](repeating: 0, count: max(Int(rank), 1))
            if H5Pget_chunk(creation.id, rank, &chunk) == rank {
                chunkBytes =
                    (Checked(H5Tget_size(type.id)) * chunk.prefix(Int(rank)).reduce(1) { $0 &* Int(clamping: $1) } * 2).value ?? Int.max
            }
        }
        let storage = HDF5DatasetStorage(
            file: file, filePath: filePath, path: "/" + link, shape: shape,
            elementBytes: H5Tget_size(type.id), byteCount: byteCount, chunkBytes: chunkBytes,
            littleEndian: littleEndian)
        return StoredTensor(
            name: name, dtype: dtype, shape: shape, byteCount: byteCount, storage: storage, offset: 0,
            location: "/" + link)
    }

    /// A virtual dataset may draw only on this same file (source file name "."): another file's
    /// bytes would land in the output, and a missing source would read as silent fill values.
    private static func refuseOtherFileSources(_ creation: hid_t, dataset: String) throws {
        var count = 0
        try HDF5.check(H5Pget_virtual_count(creation, &count), "read the sources of \(dataset)")
        for index in 0..<count {
            let length = try HDF5.check(H5Pget_virtual_filename(creation, index, nil, 0), "read the sources of \(dataset)")
            var name = [CChar](repeating: 0, count: Int(length) + 1)
            try HDF5.check(H5Pget_virtual_filename(creation, index, &name, name.count), "read the sources of \(dataset)")
            let source = String(decoding: name.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard source == "." else { throw HDF5FormatError.virtualSource(dataset: dataset, file: source) }
        }
    }

    /// String attributes (scalar) as a map, and every other attribute as text.
    private static func attributes(of object: hid_t, object path: String) throws -> ([String: String], [CheckpointAttribute]) {
        final class Box { var names: [String] = [] }
        let box = Box()
        let visit: H5A_operator2_t = { _, name, _, data in
            guard let name, let data else { return 0 }
            Unmanaged<Box>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }
        var index: hsize_t = 0
        try HDF5.check(
            H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &index, visit, Unmanaged.passUnretained(box).toOpaque()),
            "list the attributes of \(path)")
        var strings: [String: String] = [:]
        var others: [CheckpointAttribute] = []
        for name in box.names {
            let attribute = try HDF5Handle(
                H5Aopen(object, name, HDF5.defaultProperties), "open attribute \(name) of \(path)", close: H5Aclose)
            let value = try HDF5Attribute.read(attribute.id, "\(path) attribute \(name)")
            if case .string(let text) = value {
                strings[name] = text
            } else {
                others.append(CheckpointAttribute(object: path, name: name, value: value.description))
            }
        }
        return (strings, others)
    }
}

/// One dataset's bytes: read whole on first use straight into an aligned buffer (for forward
/// passes), and freed when released (so a conversion holds one tensor at a time); or streamed a
/// bounded hyperslab at a time (for conversions), so that a small compressed file that expands
/// into gigabytes never needs them in memory.
final class HDF5DatasetStorage: ByteStorage, @unchecked Sendable {
    let file: HDF5Handle
    let filePath: String
    let path: String
    let shape: [Int]
    let elementBytes: Int
    let byteCount: Int
    /// Memory libhdf5 needs besides ours to read a chunk (twice a chunk; 0 when not chunked).
    let chunkBytes: Int
    let littleEndian: Bool
    private var buffer: UnsafeMutableRawBufferPointer?
    private let lock = PthreadLock()

    init(
        file: HDF5Handle, filePath: String, path: String, shape: [Int], elementBytes: Int, byteCount: Int, chunkBytes: Int,
        littleEndian: Bool
    ) {
        self.chunkBytes = chunkBytes
        self.file = file
        self.filePath = filePath
        self.path = path
        self.shape = shape
        self.elementBytes = max(elementBytes, 1)
        self.byteCount = byteCount
        self.littleEndian = littleEndian
    }

    deinit { buffer.map { free($0.baseAddress) } }

    func load() throws(FileError) {
        let result = lock.locked { () -> Result<Void, FileError> in
            guard buffer == nil else { return .success(()) }
            let destination: UnsafeMutableRawBufferPointer
            do throws(MemoryError) {
                destination = try MemoryBudget.allocate(byteCount)
            } catch {
                return .failure(FileError(path: filePath, problem: HDF5Error(operation: "read \(path)", reason: error.description)))
            }
            do throws(FileError) {
                try read(into: destination.baseAddress!, run: nil)
            } catch {
                free(destination.baseAddress)
                return .failure(error)
            }
            buffer = destination
            return .success(())
        }
        try result.get()
    }

    var bytes: UnsafeRawBufferPointer {
        lock.locked { buffer.map { UnsafeRawBufferPointer(rebasing: $0[0..<byteCount]) } ?? UnsafeRawBufferPointer(start: nil, count: 0) }
    }

    func release(_ range: Range<Int>) {
        guard range.upperBound >= byteCount else { return }
        lock.locked {
            buffer.map { free($0.baseAddress) }
            buffer = nil
        }
    }

    func stream(
        _ range: Range<Int>, chunk: Int, granule: Int,
        _ body: (UnsafeRawBufferPointer) throws(FileError) -> Void
    ) throws(FileError) {
        if shape.isEmpty || byteCount <= chunk || lock.locked({ buffer != nil }) {
            return try streamViews(range, chunk: chunk, granule: granule, body)
        }
        let slabs = HDF5Slabs(shape: shape, elementBytes: elementBytes, maxBytes: chunk)
        let maxUnits = max(1, chunk / slabs.unitBytes)
        let scratch: UnsafeMutableRawBufferPointer
        do throws(MemoryError) { scratch = try MemoryBudget.allocate(maxUnits * slabs.unitBytes) } catch {
            throw FileError(path: filePath, problem: HDF5Error(operation: "read \(path)", reason: error.description))
        }
        defer { free(scratch.baseAddress) }
        let units = (range.lowerBound / slabs.unitBytes)..<((range.upperBound + slabs.unitBytes - 1) / slabs.unitBytes)
        var first = units.lowerBound
        while first < units.upperBound {  // one run at a time: a hostile shape can have billions
            let run = slabs.run(from: first, maxUnits: maxUnits, limit: units.upperBound)
            first = run.upperBound
            try read(into: scratch.baseAddress!, run: (slabs, run))
            let runStart = run.lowerBound * slabs.unitBytes
            let lower = max(range.lowerBound, runStart), upper = min(range.upperBound, run.upperBound * slabs.unitBytes)
            try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[(lower - runStart)..<(upper - runStart)]))
        }
    }

    /// Reads the whole dataset, or one hyperslab of it, as little-endian bytes.
    private func read(into destination: UnsafeMutableRawPointer, run: (slabs: HDF5Slabs, units: Range<Int>)?) throws(FileError) {
        guard MemoryBudget.fits(chunkBytes) else {
            throw FileError(
                path: filePath,
                problem: HDF5Error(
                    operation: "read \(path)",
                    reason: "its chunks are too large: "
                        + MemoryError(bytes: chunkBytes, available: MemoryBudget.availableBytes).description))
        }
        do {
            try HDF5.locked { () throws in
                let dataset = try HDF5Handle(H5Dopen2(file.id, path, HDF5.defaultProperties), "open \(path)", close: H5Dclose)
                guard byteCount > 0 else { return }
                // The file's own type as the memory type reads the bytes as stored; big-endian
                // data is read through the same type in little-endian order (a byte swap).
                let type = try HDF5Handle(H5Dget_type(dataset.id), "read the type of \(path)", close: H5Tclose)
                let memory = try HDF5Handle(H5Tcopy(type.id), "copy the type of \(path)", close: H5Tclose)
                if !littleEndian { try HDF5.check(H5Tset_order(memory.id, H5T_ORDER_LE), "convert \(path) to little-endian") }
                guard let run else {
                    try HDF5.check(H5Dread(dataset.id, memory.id, HDF5.all, HDF5.all, HDF5.defaultProperties, destination), "read \(path)")
                    return
                }
                let spaces = try run.slabs.spaces(of: run.units, in: dataset.id, path)
                try HDF5.check(
                    H5Dread(dataset.id, memory.id, spaces.memory.id, spaces.file.id, HDF5.defaultProperties, destination),
                    "read \(path)")
            }
        } catch {
            throw FileError(path: filePath, problem: (error as? HDF5Error) ?? HDF5Error(operation: "read \(path)", reason: "\(error)"))
        }
    }
}
