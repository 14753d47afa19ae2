import Dispatch
import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// Reads `.moeckpt` files (docs/FORMAT.md): maps the file, checks the preamble, the header
/// checksum and every structural rule, and returns tensors that point into the mapping. Tensor
/// checksums are verified on request (`check`), since that reads every byte.
public enum MoeckptFile {
    /// The magic at offset 0, or the extension.
    public static func isMoeckpt(_ path: String) -> Bool {
        if path.hasSuffix(".moeckpt") { return true }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var head = [UInt8](repeating: 0, count: 8)
        return pread(fd, &head, 8, 0) == 8 && head == MoeckptLayout.magic
    }

    /// What the header says beyond the tensor table.
    struct Header: Sendable {
        let model: JSONObject?
        let layout: String?
        let sourceLayout: String?
        let checksums: [String: UInt32]
        /// Where the data section starts in the file.
        let dataOffset: Int
    }

    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        try open(try FileMapping(path: path))
    }

    /// Reads a file already mapped (or copied into memory).
    public static func open(_ mapping: FileMapping) throws(FileError) -> Checkpoint {
        let path = mapping.path
        do {
            let (tensors, metadata, header) = try parse(mapping)
            return Checkpoint(
                path: path, format: .moeckpt, tensors: tensors, metadata: metadata, files: [path],
                embedded: EmbeddedModel(
                    description: header.model, layout: header.layout,
                    sourceLayout: header.sourceLayout),
                checksums: StoredChecksums(crc32c: header.checksums, dataOffset: header.dataOffset))
        } catch {
            throw FileError(path: path, problem: error)
        }
    }

    static func parse(_ mapping: FileMapping) throws(MoeckptError) -> ([StoredTensor], [String: String], Header) {
        let file = mapping.bytes
        guard file.count >= MoeckptLayout.magic.count, Array(file.prefix(8)) == MoeckptLayout.magic else {
            throw .notMoeckpt
        }
        guard file.count >= MoeckptLayout.preambleBytes else { throw .truncatedPreamble(size: file.count) }
        let major = file.loadUnaligned(fromByteOffset: 8, as: UInt16.self).littleEndian
        let minor = file.loadUnaligned(fromByteOffset: 10, as: UInt16.self).littleEndian
        let headerLength = file.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        let storedChecksum = file.loadUnaligned(fromByteOffset: 24, as: UInt32.self).littleEndian
        guard headerLength <= UInt64(min(MoeckptLayout.maximumHeaderBytes, file.count - MoeckptLayout.preambleBytes)) else {
            // A corrupt length is caught here or by the checksum; a newer major version first.
            if major > MoeckptLayout.majorVersion { throw .newerVersion(file: "\(major).\(minor)", supported: supported) }
            throw .headerOutOfBounds(length: headerLength, fileSize: file.count)
        }
        let headerEnd = MoeckptLayout.preambleBytes + Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[MoeckptLayout.preambleBytes..<headerEnd])
        var computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: file[0..<MoeckptLayout.checksummedPreambleBytes]))
        computed = CRC32C.checksum(headerBytes, continuing: computed)
        if major > MoeckptLayout.majorVersion && computed == storedChecksum {
            throw .newerVersion(file: "\(major).\(minor)", supported: supported)
        }
        guard computed == storedChecksum else { throw .headerChecksumMismatch(stored: storedChecksum, computed: computed) }
        guard major == MoeckptLayout.majorVersion else { throw .newerVersion(file: "\(major).\(minor)", supported: supported) }
        guard file.loadUnaligned(fromByteOffset: 12, as: UInt32.self) == 0,
            file.loadUnaligned(fromByteOffset: 28, as: UInt32.self) == 0
        else { throw .nonzeroReserved }

        let json: JSONValue
        do {
            json = try JSONParser.parse(headerBytes)
        } catch {
            throw .headerNotJSON(error.description)
        }
        guard case .object(let header) = json else { throw .malformedHeader("not a JSON object") }
        // The fields FORMAT.md fixes: format, version (the preamble's), checksum, layout.
        guard header["format"] == .string("moeckpt") else { throw .malformedHeader("\"format\" must be \"moeckpt\"") }
        guard case .array(let version)? = header["version"], version.count == 2,
            version[0].nonNegativeInt == Int(major), version[1].nonNegativeInt == Int(minor)
        else {
            throw .malformedHeader("\"version\" must be [\(major), \(minor)], the preamble's version")
        }
        guard header["checksum"] == .string("crc32c") else { throw .malformedHeader("\"checksum\" must be \"crc32c\"") }
        func count(_ key: String) throws(MoeckptError) -> Int {
            guard let value = header[key]?.nonNegativeInt else {
                throw .malformedHeader("\"\(key)\" is missing or not a non-negative integer")
            }
            return value
        }
        let dataOffset = try count("data_offset")
        let dataLength = try count("data_length")
        let expectedOffset = MoeckptLayout.alignUp(headerEnd, MoeckptLayout.dataAlignment)
        guard dataOffset == expectedOffset else { throw .dataOffsetMismatch(declared: dataOffset, expected: expectedOffset) }
        let (total, overflow) = dataOffset.addingReportingOverflow(dataLength)
        guard !overflow, total == file.count else { throw .fileSizeMismatch(declared: overflow ? Int.max : total, actual: file.count) }
        guard isZero(UnsafeRawBufferPointer(rebasing: file[headerEnd..<dataOffset])) else {
            throw .nonzeroPadding(region: "between the header and the data section")
        }

        var metadata: [String: String] = [:]
        do {
            guard case .object(let object)? = header["metadata"] else { throw .malformedHeader("\"metadata\" is missing or not an object") }
            for (key, value) in object.entries {
                guard case .string(let text) = value else { throw .malformedHeader("metadata \"\(key)\" is not a string") }
                metadata[key] = text
            }
        }
        guard case .array(let entries)? = header["tensors"] else { throw .malformedHeader("\"tensors\" is missing or not an array") }
        var tensors: [StoredTensor] = []
        var checksums: [String: UInt32] = [:]
        var previous: (name: String, end: Int)?
        for entry in entries {
            let tensor = try parseTensor(entry, mapping: mapping, dataOffset: dataOffset, dataLength: dataLength)
            guard checksums[tensor.stored.name] == nil else { throw .duplicateTensor(tensor.stored.name) }
            let relative = tensor.stored.offset - dataOffset
            if let previous, relative < previous.end { throw .tensorsOverlap(tensor: tensor.stored.name, previous: previous.name) }
            previous = (tensor.stored.name, relative + tensor.stored.byteCount)
            checksums[tensor.stored.name] = tensor.checksum
            tensors.append(tensor.stored)
        }
        let model: JSONObject?
        switch header["model"] {
        case .object(let object)?: model = object
        case nil, .null?: model = nil
        default: throw .malformedHeader("\"model\" is not an object")
        }
        func string(_ key: String) throws(MoeckptError) -> String? {
            switch header[key] {
            case .string(let text)?: return text
            case nil, .null?: return nil
            default: throw .malformedHeader("\"\(key)\" is not a string")
            }
        }
        let layout = try string("layout")
        guard layout == nil || layout == "canonical" else { throw .malformedHeader("\"layout\" must be \"canonical\" when present") }
        let sourceLayout = try string("source_layout")
        if let sourceLayout, !isLayoutKey(sourceLayout) {
            throw .malformedHeader("\"source_layout\" must be a layout name (letters, digits, - and _)")
        }
        return (
            tensors, metadata,
            Header(
                model: model, layout: layout, sourceLayout: sourceLayout,
                checksums: checksums, dataOffset: dataOffset)
        )
    }

    static var supported: String { "\(MoeckptLayout.majorVersion).x" }

    private static func parseTensor(
        _ entry: JSONValue, mapping: FileMapping, dataOffset: Int, dataLength: Int
    )
        throws(MoeckptError) -> (stored: StoredTensor, checksum: UInt32)
    {
        guard case .object(let fields) = entry, case .string(let name)? = fields["name"] else {
            throw .malformedHeader("a tensor entry has no name")
        }
        guard case .string(let dtypeName)? = fields["dtype"] else { throw .malformedHeader("tensor \"\(name)\" has no dtype") }
        guard let dtype = DType(rawValue: dtypeName) else { throw .unknownDtype(tensor: name, dtype: dtypeName) }
        guard case .array(let dims)? = fields["shape"] else { throw .malformedHeader("tensor \"\(name)\" has no shape") }
        let shape = dims.compactMap(\.nonNegativeInt)
        guard shape.count == dims.count, shape.count <= 64 else { throw .malformedHeader("tensor \"\(name)\" has an invalid shape") }
        guard let offset = fields["offset"]?.nonNegativeInt, let length = fields["length"]?.nonNegativeInt else {
            throw .malformedHeader("tensor \"\(name)\" has no offset or length")
        }
        guard case .string(let hex)? = fields["crc32c"], hex.utf8.count == 8,
            hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
            let checksum = UInt32(hex, radix: 16)
        else {
            throw .malformedHeader("tensor \"\(name)\" has no crc32c of 8 lowercase hex digits")
        }
        let expected: Int
        do { expected = try Shape.byteCount(shape, dtype: dtype) } catch {
            throw .malformedHeader("tensor \"\(name)\" has a shape whose size overflows or does not fill whole bytes")
        }
        guard expected == length else { throw .tensorLengthMismatch(tensor: name, expected: expected, declared: length) }
        guard offset % MoeckptLayout.tensorAlignment == 0 else { throw .tensorMisaligned(tensor: name, offset: offset) }
        guard offset <= dataLength, length <= dataLength - offset else { throw .tensorOutOfBounds(tensor: name) }
        let stored = StoredTensor(
            name: name, dtype: dtype, shape: shape, byteCount: length, storage: mapping,
            offset: dataOffset + offset)
        return (stored, checksum)
    }

    /// A naming layout's key: 1 to 32 ASCII letters, digits, `-` and `_`.
    static func isLayoutKey(_ text: String) -> Bool {
        (1...32).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D || $0 == 0x5F
            }
    }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool { !bytes.contains { $0 != 0 } }

    /// Every tensor's CRC-32C, the tensors shared out over the cores.
    static func parallelChecksums(_ tensors: [StoredTensor]) -> [UInt32] {
        /// Each worker writes its own elements of one buffer (no shared Swift array).
        struct Results: @unchecked Sendable { let base: UnsafeMutablePointer<UInt32> }
        let buffer = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(tensors.count, 1))
        defer { buffer.deallocate() }
        let results = Results(base: buffer.baseAddress!)
        let threads = max(1, min(CPUBudget.usableCPUs, tensors.count))
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            var index = worker
            while index < tensors.count {
                results.base[index] = CRC32C.checksum(tensors[index].bytes)
                index += threads
            }
        }
        return Array(buffer.prefix(tensors.count))
    }

    /// Verifies every tensor's checksum and that the padding between tensors is zero. Reads the
    /// whole data section (at memory speed: CRC-32C in hardware).
    static func check(_ checkpoint: Checkpoint) -> (tensors: [TensorCheck], problems: [MoeckptError]) {
        guard let native = checkpoint.checksums else { return ([], []) }
        var results: [TensorCheck] = []
        var problems = paddingProblems(checkpoint)
        let ordered = checkpoint.tensors.sorted(by: { $0.offset < $1.offset })
        for (tensor, computed) in zip(ordered, parallelChecksums(ordered)) {
            let stored = native.crc32c[tensor.name] ?? 0
            results.append(TensorCheck(name: tensor.name, stored: CRC32C.hex(stored), computed: CRC32C.hex(computed)))
            if computed != stored { problems.append(.tensorChecksumMismatch(tensor: tensor.name, stored: stored, computed: computed)) }
        }
        return (results, problems)
    }

    /// The padding rule: the bytes between tensors and after the last one are zero.
    static func paddingProblems(_ checkpoint: Checkpoint) -> [MoeckptError] {
        guard let native = checkpoint.checksums, let storage = checkpoint.tensors.first?.storage else { return [] }
        var problems: [MoeckptError] = []
        let data = storage.bytes
        var position = native.dataOffset
        for tensor in checkpoint.tensors.sorted(by: { $0.offset < $1.offset }) {
            if tensor.offset > position, !isZero(UnsafeRawBufferPointer(rebasing: data[position..<tensor.offset])) {
                problems.append(.nonzeroPadding(region: "before tensor \"\(tensor.name)\""))
            }
            position = max(position, tensor.offset + tensor.byteCount)
        }
        if position < data.count, !isZero(UnsafeRawBufferPointer(rebasing: data[position...])) {
            problems.append(.nonzeroPadding(region: "after the last tensor"))
        }
        return problems
    }
}

/// Checks a `.moeckpt` file as a conversion reads it: the padding rule at once, and each stored
/// tensor's CRC-32C the first time any of its bytes is used, just before they are copied (the
/// bytes are then in the cache for the copy), so that damage is never passed on.
public final class NativeIntegrity: @unchecked Sendable {
    private let checkpoint: Checkpoint
    private let byOffset: [StoredTensor]
    private var verified: Set<Int> = []
    private let lock = PthreadLock()

    /// Nil for checkpoints that are not `.moeckpt` files.
    init?(_ checkpoint: Checkpoint) throws(FileError) {
        guard checkpoint.checksums != nil else { return nil }
        if let problem = MoeckptFile.paddingProblems(checkpoint).first { throw FileError(path: checkpoint.path, problem: problem) }
        self.checkpoint = checkpoint
        byOffset = checkpoint.tensors.sorted { $0.offset < $1.offset }
    }

    /// Verifies every stored tensor that `piece` reads from, unless done before.
    public func verify(_ piece: BytePiece) throws(FileError) {
        guard piece.storage === byOffset.first?.storage, piece.count > 0 else { return }
        // The first tensor that ends after the piece starts, then each one it overlaps.
        var low = 0, high = byOffset.count
        while low < high {
            let middle = (low + high) / 2
            if byOffset[middle].offset + byOffset[middle].byteCount <= piece.offset { low = middle + 1 } else { high = middle }
        }
        var index = low
        while index < byOffset.count, byOffset[index].offset < piece.offset + piece.count {
            try verify(index)
            index += 1
        }
    }

    private func verify(_ index: Int) throws(FileError) {
        guard lock.locked({ !verified.contains(index) }) else { return }
        let tensor = byOffset[index]
        let computed = CRC32C.checksum(tensor.bytes)
        let stored = checkpoint.checksums?.crc32c[tensor.name] ?? 0
        guard computed == stored else {
            throw FileError(
                path: checkpoint.path, problem: MoeckptError.tensorChecksumMismatch(tensor: tensor.name, stored: stored, computed: computed)
            )
        }
        _ = lock.locked { verified.insert(index) }
    }
}
