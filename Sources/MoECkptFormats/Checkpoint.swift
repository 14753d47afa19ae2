import MoECkptTensors

/// Where a checkpoint came from.
public enum CheckpointFormat: String, Sendable, Codable {
    case safetensors
    case shardedSafetensors = "sharded-safetensors"
}

/// One tensor of a checkpoint: its description and where its bytes are.
public struct StoredTensor: Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let byteCount: Int
    /// The file holding the bytes and their offset in it.
    public let file: FileMapping
    public let fileOffset: Int

    public var elementCount: Int { shape.reduce(1, *) }

    /// The tensor's bytes, in place in the file mapping (no copy).
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[fileOffset..<(fileOffset + byteCount)])
    }

    /// The bytes as a one-piece rope, for layout re-arrangements.
    public var rope: ByteRope { ByteRope([BytePiece(storage: file, offset: fileOffset, count: byteCount)]) }
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

    public init(path: String, format: CheckpointFormat, tensors: [StoredTensor],
                metadata: [String: String], files: [String]) {
        self.path = path
        self.format = format
        self.tensors = tensors
        self.metadata = metadata
        self.files = files
    }

    public func tensor(named name: String) -> StoredTensor? { tensors.first { $0.name == name } }

    /// Opens a safetensors file, a sharded checkpoint's index.json, or a directory holding either.
    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        if FileSystem.isDirectory(path) {
            switch try SafetensorsLocator.locate(inDirectory: path) {
            case .file(let found): return try open(found)
            case .unindexedShards(let shards): return try ShardedSafetensors.open(unindexed: shards, directory: path)
            }
        }
        if path.hasSuffix(".index.json") { return try ShardedSafetensors.open(indexPath: path) }
        return try SafetensorsFile.open(path)
    }
}
