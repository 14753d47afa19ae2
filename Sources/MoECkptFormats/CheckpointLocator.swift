/// Finds the checkpoint a directory holds, in any format moeckpt reads.
public struct CheckpointLocator: Sendable {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// Files that may lie beside a checkpoint's weights without being weights (a model
    /// directory's reference outputs, say): never taken for the checkpoint.
    public var notWeights: Set<String>

    public init(notWeights: Set<String> = []) { self.notWeights = notWeights }

    public struct NoCheckpoint: Error, CustomStringConvertible, Sendable {
        public var description: String {
            "directory holds no \(CheckpointLocator.singleName), \(CheckpointLocator.indexName), other single checkpoint, single HDF5 or single GGUF file"
        }
    }

    /// What a directory holds.
    public enum Found: Equatable, Sendable {
        case file(String)
        /// Shards without an index (`consolidated-00001-of-00002.safetensors`, ...), as Mistral's
        /// native checkpoints come.
        case unindexedShards([String])
    }

    /// The index if there is one, else `model.safetensors`, else the only `.safetensors` file,
    /// else a complete set of `-0000i-of-0000N` shards, else the only HDF5 file, else the only
    /// GGUF file.
    public func locate(inDirectory directory: String) throws(FileError) -> Found {
        let names = FileSystem.contents(ofDirectory: directory).filter { !notWeights.contains($0) }
        if names.contains(Self.indexName) { return .file(FileSystem.join(directory, Self.indexName)) }
        let indexes = names.filter { $0.hasSuffix(".safetensors.index.json") }
        if indexes.count == 1 { return .file(FileSystem.join(directory, indexes[0])) }
        if names.contains(Self.singleName) { return .file(FileSystem.join(directory, Self.singleName)) }
        let files = names.filter { $0.hasSuffix(".safetensors") }
        if files.count == 1 { return .file(FileSystem.join(directory, files[0])) }
        if !files.isEmpty, files.allSatisfy({ $0.contains("-of-") }) {
            return .unindexedShards(files.map { FileSystem.join(directory, $0) })
        }
        let hdf5 = names.filter { $0.hasSuffix(".h5") || $0.hasSuffix(".hdf5") }
        if files.isEmpty, hdf5.count == 1 { return .file(FileSystem.join(directory, hdf5[0])) }
        let gguf = names.filter { $0.hasSuffix(".gguf") }
        if files.isEmpty, hdf5.isEmpty, gguf.count == 1 { return .file(FileSystem.join(directory, gguf[0])) }
        // A split GGUF model: its first part (which opens the others).
        let firstParts = gguf.filter { $0.contains("-00001-of-") }
        if files.isEmpty, hdf5.isEmpty, firstParts.count == 1, gguf.allSatisfy({ $0.contains("-of-") }) {
            return .file(FileSystem.join(directory, firstParts[0]))
        }
        throw FileError(path: directory, problem: NoCheckpoint())
    }
}
