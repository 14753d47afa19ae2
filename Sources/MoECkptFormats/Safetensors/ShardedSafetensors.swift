/// Finds the safetensors checkpoint inside a directory, the way `from_pretrained` does.
/// Opens a checkpoint split over several safetensors files by a transformers-style index:
/// `{"metadata": {...}, "weight_map": {"tensor name": "shard file name", ...}}`.
public enum ShardedSafetensors {
    public static func open(indexPath: String) throws(FileError) -> Checkpoint {
        let fail = { (problem: SafetensorsError) in FileError(path: indexPath, problem: problem) }
        let weightMap = try readWeightMap(indexPath)
        let directory = FileSystem.directoryName(indexPath)

        // Shards in order of first mention, each opened (and validated) once.
        var shardOrder: [String] = []
        for (_, file) in weightMap where !shardOrder.contains(file) { shardOrder.append(file) }
        var shards: [String: Checkpoint] = [:]
        for file in shardOrder {
            // A plain file name in the index's directory, as transformers writes them: no
            // directory part to follow (a link inside the checkpoint could lead anywhere). The
            // shard itself may be a link (the Hugging Face cache links shards to its blobs).
            guard !file.contains("/"), !file.contains("\0"), file != ".", file != ".." else { throw fail(.shardPathEscapes(file: file)) }
            let shardPath = FileSystem.join(directory, file)
            guard FileSystem.exists(shardPath) else { throw fail(.shardMissing(file: file)) }
            shards[file] = try SafetensorsFile.open(shardPath)
        }

        var foundIn: [String: String] = [:]
        for file in shardOrder {
            for tensor in shards[file]!.tensors {
                if let first = foundIn[tensor.name] {
                    throw fail(.tensorInTwoShards(tensor: tensor.name, first: first, second: file))
                }
                foundIn[tensor.name] = file
            }
        }
        var placement: [String: String] = [:]
        for (tensor, file) in weightMap {
            guard let found = foundIn[tensor], found == file else { throw fail(.tensorMissingFromShard(tensor: tensor, file: file)) }
            placement[tensor] = file
        }
        var tensors: [StoredTensor] = []
        for file in shardOrder {
            for tensor in shards[file]!.tensors {
                guard placement[tensor.name] != nil else { throw fail(.tensorNotInIndex(tensor: tensor.name, file: file)) }
                tensors.append(tensor)
            }
        }

        var metadata: [String: String] = [:]
        for file in shardOrder.reversed() { metadata.merge(shards[file]!.metadata) { _, earlier in earlier } }
        return Checkpoint(
            path: indexPath, format: .shardedSafetensors, tensors: tensors, metadata: metadata,
            files: shardOrder.map { FileSystem.join(directory, $0) })
    }

    /// Opens shards that have no index: each tensor must be in exactly one of them.
    public static func open(unindexed paths: [String], directory: String) throws(FileError) -> Checkpoint {
        var tensors: [StoredTensor] = []
        var foundIn: [String: String] = [:]
        var metadata: [String: String] = [:]
        for path in paths {
            let shard = try SafetensorsFile.open(path)
            for tensor in shard.tensors {
                if let first = foundIn[tensor.name] {
                    throw FileError(
                        path: directory,
                        problem: SafetensorsError.tensorInTwoShards(
                            tensor: tensor.name, first: FileSystem.baseName(first), second: FileSystem.baseName(path)))
                }
                foundIn[tensor.name] = path
                tensors.append(tensor)
            }
            metadata.merge(shard.metadata) { earlier, _ in earlier }
        }
        return Checkpoint(path: directory, format: .shardedSafetensors, tensors: tensors, metadata: metadata, files: paths)
    }

    /// Indexes above this size are refused unread (DeepSeek-V3's, 91,000 tensors, is 9 MB).
    public static let indexLimitBytes = 64 << 20

    /// The index's weight map, in file order.
    static func readWeightMap(_ indexPath: String) throws(FileError) -> [(String, String)] {
        let mapping = try FileMapping(path: indexPath, maximumBytes: indexLimitBytes)
        do {
            return try parseWeightMap(mapping.bytes)
        } catch {
            throw FileError(path: indexPath, problem: error)
        }
    }

    /// An index's `weight_map` (tensor name to shard file name), in file order.
    public static func parseWeightMap(_ bytes: UnsafeRawBufferPointer) throws(SafetensorsError) -> [(String, String)] {
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes)
        } catch {
            if case .duplicateKey(let key) = error { throw .duplicateKey(key) }
            throw .indexMalformed("not valid JSON: \(error)")
        }
        guard case .object(let index) = json else { throw .indexMalformed("not a JSON object") }
        guard case .object(let map)? = index["weight_map"] else { throw .indexMalformed("\"weight_map\" is missing or not an object") }
        var weightMap: [(String, String)] = []
        for (tensor, value) in map.entries {
            guard case .string(let file) = value, !file.isEmpty else {
                throw .indexMalformed("weight_map entry for \"\(tensor)\" is not a file name")
            }
            weightMap.append((tensor, file))
        }
        return weightMap
    }
}
