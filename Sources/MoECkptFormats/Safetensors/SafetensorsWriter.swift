import MoECkptTensors

/// A tensor to be written: its description and a function that writes exactly `byteCount` bytes.
/// Tensors are produced one at a time, so a writer holds one tensor (or one chunk) in memory.
public struct TensorToWrite {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let byteCount: Int
    /// ggml blocks the bytes are in (GGUF output only; `dtype` is then U8).
    public let blocks: GGMLType?
    public let produce: (any ByteSink) throws(FileError) -> Void

    public init(
        name: String, dtype: DType, shape: [Int], byteCount: Int, blocks: GGMLType? = nil,
        produce: @escaping (any ByteSink) throws(FileError) -> Void
    ) {
        self.blocks = blocks
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
        self.produce = produce
    }
}

extension TensorToWrite {
    /// Produces the bytes into `file`, checking that there are `byteCount` of them.
    func write(to file: OutputFile) throws(FileError) {
        let before = file.bytesWritten
        try produce(file)
        guard file.bytesWritten - before == byteCount else { throw FileError(path: file.path, problem: WriterInconsistency(tensor: name)) }
    }
}

/// A writer broke its own promise (a producer wrote the wrong number of bytes): a bug, reported
/// rather than trapped.
public struct WriterInconsistency: Error, CustomStringConvertible, Sendable {
    public let tensor: String
    public var description: String { "internal error: wrong byte count written for tensor \"\(tensor)\"" }
}

/// Writes safetensors files exactly as the reference writer lays them out: tensors sorted by
/// descending dtype rank then by name (byte order), compact JSON header padded with spaces to a
/// multiple of 8 bytes, `__metadata__` first with its keys sorted.
public enum SafetensorsWriter {
    /// The reference writer's order.
    public static func referenceOrder(_ tensors: [TensorToWrite]) -> [TensorToWrite] {
        tensors.sorted {
            if $0.dtype != $1.dtype { return $0.dtype > $1.dtype }
            return $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
    }

    /// The header bytes (without the 8-byte length) for tensors already in reference order.
    public static func header(for ordered: [TensorToWrite], metadata: [String: String]) -> [UInt8] {
        var members: [(String, JSONValue)] = []
        if !metadata.isEmpty {
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            members.append((SafetensorsHeader.metadataKey, .object(JSONObject(keys.map { ($0, .string(metadata[$0]!)) }))))
        }
        var offset = 0
        for tensor in ordered {
            members.append(
                (
                    tensor.name,
                    .object(
                        JSONObject([
                            ("dtype", .string(tensor.dtype.name)),
                            ("shape", .array(tensor.shape.map { .number(String($0)) })),
                            ("data_offsets", .array([.number(String(offset)), .number(String(offset + tensor.byteCount))])),
                        ]))
                ))
            offset += tensor.byteCount
        }
        let json = JSONValue.object(JSONObject(members)).serialized(.compact)
        var bytes = Array(json.utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8))
        return bytes
    }

    /// Writes one safetensors file, streaming tensor by tensor; returns the tensors' total bytes.
    @discardableResult
    public static func write(
        _ tensors: [TensorToWrite], metadata: [String: String],
        to file: OutputFile
    ) throws(FileError) -> Int {
        let ordered = referenceOrder(tensors)
        let header = header(for: ordered, metadata: metadata)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { (raw) throws(FileError) in try file.write(raw) }
        try file.write(header)
        var total = 0
        for tensor in ordered {
            try tensor.write(to: file)
            total += tensor.byteCount
        }
        return total
    }
}

/// Splits tensors into shards of at most `maxBytes` each (a tensor larger than that gets a shard of
/// its own), keeping their order, as transformers' `save_pretrained(max_shard_size=...)` does.
public enum ShardPlanner {
    public static func plan(_ tensors: [TensorToWrite], maxBytes: Int) -> [[TensorToWrite]] {
        var shards: [[TensorToWrite]] = []
        var current: [TensorToWrite] = []
        var currentBytes = 0
        for tensor in tensors {
            if !current.isEmpty && currentBytes + tensor.byteCount > maxBytes {
                shards.append(current)
                current = []
                currentBytes = 0
            }
            current.append(tensor)
            currentBytes += tensor.byteCount
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    /// `model.safetensors` alone, else `model-00001-of-00003.safetensors` (transformers' shard names).
    public static func fileName(stem: String = "model", _ index: Int, of count: Int) -> String {
        guard count > 1 else { return stem + ".safetensors" }
        func fiveDigits(_ n: Int) -> String {
            let text = String(n)
            return String(repeating: "0", count: max(0, 5 - text.count)) + text
        }
        return "\(stem)-\(fiveDigits(index + 1))-of-\(fiveDigits(count)).safetensors"
    }

    /// The index.json transformers writes: `json.dumps(index, indent=2, sort_keys=True) + "\n"`.
    public static func indexJSON(weightMap: [String: String], totalParameters: Int, totalSize: Int) -> String {
        let names = weightMap.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        let metadata = JSONObject([("total_parameters", .integer(totalParameters)), ("total_size", .integer(totalSize))])
        let index = JSONValue.object(
            JSONObject([
                ("metadata", .object(metadata)),
                ("weight_map", .object(JSONObject(names.map { ($0, .string(weightMap[$0]!)) }))),
            ]))
        return index.serialized(.pythonIndented) + "\n"
    }
}
