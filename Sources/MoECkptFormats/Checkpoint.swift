import MoECkptTensors

/// Where a checkpoint came from.
public enum CheckpointFormat: String, Sendable {
    case safetensors
    case shardedSafetensors = "sharded-safetensors"
    case hdf5
    case moeckpt
    case gguf
}

/// One tensor of a checkpoint: its description and where its bytes are.
public struct StoredTensor: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let byteCount: Int
    /// The storage holding the bytes (a file mapping, or a dataset read on demand) and their offset in it.
    public let storage: any ByteStorage
    public let offset: Int
    /// Where the tensor is inside its file, for formats with paths (an HDF5 dataset path).
    public let location: String?
    /// The ggml blocks the tensor is stored in (a quantized GGUF tensor, whose `dtype` and bytes
    /// are then its F32 values, computed when first read).
    public let blocks: StoredBlocks?

    public init(
        name: String, dtype: DType, shape: [Int], byteCount: Int, storage: any ByteStorage, offset: Int,
        location: String? = nil, blocks: StoredBlocks? = nil
    ) {
        self.blocks = blocks
        self.location = location
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
        self.storage = storage
        self.offset = offset
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The type as the file stores it: the ggml block type's name (Q4_0, ...) or the dtype's.
    public var storedTypeName: String { blocks?.type.name ?? dtype.name }
    /// The bytes the file holds for the tensor (its blocks, for a quantized GGUF tensor).
    public var storedByteCount: Int { blocks?.rope.count ?? byteCount }

    /// The tensor's bytes, in place (no copy); for storages that are read on demand, after `load()`.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[offset..<(offset + byteCount)])
    }

    /// Reads the bytes if the format keeps them unread until needed; then returns them.
    @discardableResult
    public func load() throws(FileError) -> UnsafeRawBufferPointer {
        try storage.load()
        return bytes
    }

    /// The bytes as a one-piece rope, for layout re-arrangements.
    public var rope: ByteRope { ByteRope([BytePiece(storage: storage, offset: offset, count: byteCount)]) }
}

/// A tensor's bytes as ggml blocks: its type and where they are.
public struct StoredBlocks: Sendable {
    public let type: GGMLType
    public let rope: ByteRope

    public init(type: GGMLType, rope: ByteRope) {
        self.type = type
        self.rope = rope
    }
}

/// An attribute of an object in a checkpoint, with its value as text.
public struct CheckpointAttribute: Sendable, Equatable, Encodable {
    /// The object's path (`/` for the root).
    public let object: String
    public let name: String
    public let value: String
}

/// A checkpoint opened for reading: its tensors in storage order and its string metadata.
/// Opening reads headers only; tensor bytes are paged in when used.
public struct Checkpoint: Sendable {
    public let path: String
    public let format: CheckpointFormat
    public let tensors: [StoredTensor]
    public let metadata: [String: String]
    /// The data files, in order (one for a single file, every shard for a sharded checkpoint).
    public let files: [String]
    /// Attributes that are not metadata (HDF5 attributes of groups and datasets, non-string ones).
    public let attributes: [CheckpointAttribute]
    /// What the file says about its model besides its tensors (a `.moeckpt` header's description).
    public let embedded: EmbeddedModel?
    /// The checksums the format stores (a `.moeckpt` file's), verified with `verifyChecksums()`
    /// or, as a conversion reads the tensors, by `checksumVerifier()`.
    public let checksums: StoredChecksums?
    /// A GGUF file's typed key/values (its scalars are also in `metadata`, as text).
    public let gguf: GGUFContents?

    public init(
        path: String, format: CheckpointFormat, tensors: [StoredTensor],
        metadata: [String: String], files: [String], attributes: [CheckpointAttribute] = [],
        embedded: EmbeddedModel? = nil, checksums: StoredChecksums? = nil, gguf: GGUFContents? = nil
    ) {
        self.gguf = gguf
        self.embedded = embedded
        self.checksums = checksums
        self.path = path
        self.format = format
        self.tensors = tensors
        self.metadata = metadata
        self.files = files
        self.attributes = attributes
    }

    public func tensor(named name: String) -> StoredTensor? { tensors.first { $0.name == name } }

    /// Opens a safetensors, HDF5, GGUF or `.moeckpt` file, a sharded checkpoint's index.json, or a
    /// directory holding one of them (found by `locator`).
    public static func open(_ path: String, locator: CheckpointLocator = CheckpointLocator()) throws(FileError) -> Checkpoint {
        if FileSystem.isDirectory(path) {
            switch try locator.locate(inDirectory: path) {
            case .file(let found): return try open(found)
            case .unindexedShards(let shards): return try ShardedSafetensors.open(unindexed: shards, directory: path)
            }
        }
        if path.hasSuffix(".index.json") { return try ShardedSafetensors.open(indexPath: path) }
        if MoeckptFile.isMoeckpt(path) { return try MoeckptFile.open(path) }
        if GGUFFile.isGGUF(path) { return try GGUFFile.open(path) }
        if HDF5File.isHDF5(path) { return try HDF5File.open(path) }
        return try SafetensorsFile.open(path)
    }
}

/// A model description a checkpoint file carries itself (the `.moeckpt` header's).
public struct EmbeddedModel: Sendable {
    /// A config.json object.
    public let description: JSONObject?
    /// The layout the tensor names are in (`canonical`), and the layout they were converted from.
    public let layout: String?
    public let sourceLayout: String?
}

/// Checksums a format stores with its tensors, and where its data section starts (the bytes
/// between tensors there must be zero).
public struct StoredChecksums: Sendable {
    public let crc32c: [String: UInt32]
    public let dataOffset: Int
}

/// The result of checking one tensor's checksum.
public struct TensorCheck: Sendable, Encodable {
    public let name: String
    public let stored: String
    public let computed: String
    public var passed: Bool { stored == computed }
}

extension Checkpoint {
    /// Every tensor's checksum and the padding rule, checked (reads all data); nil when the format
    /// stores no checksums.
    public func verifyChecksums() -> (tensors: [TensorCheck], problems: [any Error & CustomStringConvertible & Sendable])? {
        guard checksums != nil else { return nil }
        let (tensors, problems) = MoeckptFile.check(self)
        return (tensors, problems.map { $0 })
    }

    /// Checks each stored tensor the first time a conversion reads it; nil when the format
    /// stores no checksums.
    public func checksumVerifier() throws(FileError) -> NativeIntegrity? { try NativeIntegrity(self) }
}
