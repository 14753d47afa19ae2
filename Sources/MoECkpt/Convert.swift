#if canImport(Glibc)
import Glibc
#endif

/// What `moeckpt convert` should produce.
public struct ConvertOptions {
    /// Cast float tensors to this dtype (integer, bool and complex tensors are copied unchanged).
    public var dtype: DType?
    /// Split the output into shards of at most this many bytes.
    public var maxShardBytes: Int?
    public var progress: ProgressReporter?

    public init(dtype: DType? = nil, maxShardBytes: Int? = nil, progress: ProgressReporter? = nil) {
        self.dtype = dtype
        self.maxShardBytes = maxShardBytes
        self.progress = progress
    }
}

/// What a conversion wrote.
public struct ConvertResult: Sendable {
    public let output: String
    public let files: [String]
    public let tensors: Int
    public let bytes: Int
    /// Float tensors left in their dtype because they cannot be cast element-wise (F4, F6).
    public let uncastable: [String]
}

public enum Converter {
    /// Sidecar files of a Hugging Face model directory carried over to a directory output.
    static let sidecarFiles = ["config.json", "generation_config.json"]
    static let copyChunkBytes = 16 << 20
    static let castChunkElements = 1 << 20

    /// Converts the checkpoint at `inputPath` into `outputPath`.
    ///
    /// A path ending in `.safetensors` (without `maxShardBytes`) is written as one file; anything
    /// else is a directory holding `model.safetensors`, or shards and their index. Either way the
    /// output appears only when complete.
    public static func convert(_ inputPath: String, to outputPath: String,
                               options: ConvertOptions = ConvertOptions()) throws(FileError) -> ConvertResult {
        let input = try Checkpoint.open(inputPath)
        try refuseOverwritingInput(input, inputPath: inputPath, outputPath: outputPath)

        var uncastable: [String] = []
        let tensors = input.tensors.map { tensor -> TensorToWrite in
            guard let target = options.dtype, tensor.dtype.isFloatingPoint, tensor.dtype != target else {
                return copying(tensor, progress: options.progress)
            }
            guard Cast.canCast(from: tensor.dtype, to: target) else {
                uncastable.append(tensor.name)
                return copying(tensor, progress: options.progress)
            }
            return casting(tensor, to: target, progress: options.progress)
        }
        var metadata = input.metadata
        if metadata["format"] == nil { metadata["format"] = "pt" }  // transformers requires it

        options.progress?.start(totalBytes: tensors.reduce(0) { $0 + $1.byteCount })
        defer { options.progress?.finish() }

        let singleFile = outputPath.hasSuffix(".safetensors") && options.maxShardBytes == nil
        let output = try AtomicOutput(destination: outputPath, isDirectory: !singleFile)
        var files: [String]
        var bytes = 0
        if singleFile {
            let file = try OutputFile(creating: output.temporaryPath)
            bytes = try SafetensorsWriter.write(tensors, metadata: metadata, to: file)
            try file.close()
            files = [outputPath]
        } else {
            let shards = ShardPlanner.plan(tensors.sorted { naturalOrder($0.name, $1.name) },
                                           maxBytes: options.maxShardBytes ?? Int.max)
            files = []
            var weightMap: [String: String] = [:]
            for (index, shard) in shards.enumerated() {
                let name = shards.count == 1 ? SafetensorsLocator.singleName : ShardPlanner.shardName(index, of: shards.count)
                let file = try OutputFile(creating: output.path(of: name))
                bytes += try SafetensorsWriter.write(shard, metadata: metadata, to: file)
                try file.close()
                for tensor in shard { weightMap[tensor.name] = name }
                files.append(FileSystem.join(outputPath, name))
            }
            if shards.count > 1 {
                let index = ShardPlanner.indexJSON(weightMap: weightMap, totalSize: bytes)
                try writeSmallFile(output.path(of: SafetensorsLocator.indexName), Array(index.utf8))
            }
            try copySidecars(from: input, into: output)
        }
        try output.commit()
        return ConvertResult(output: outputPath, files: files, tensors: tensors.count, bytes: bytes,
                             uncastable: uncastable)
    }

    /// Writes the tensor's bytes straight from the input mapping, releasing pages once written so
    /// memory use stays flat however large the checkpoint.
    static func copying(_ tensor: StoredTensor, progress: ProgressReporter?) -> TensorToWrite {
        TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
            (file: OutputFile) throws(FileError) in
            let bytes = tensor.bytes
            var start = 0
            while start < bytes.count {
                let end = min(start + copyChunkBytes, bytes.count)
                try file.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                tensor.file.release((tensor.fileOffset + start)..<(tensor.fileOffset + end))
                progress?.advance(by: end - start)
                start = end
            }
        }
    }

    static func casting(_ tensor: StoredTensor, to target: DType, progress: ProgressReporter?) -> TensorToWrite {
        let width = target.byteWidth!
        let sourceWidth = tensor.dtype.byteWidth!
        let count = tensor.elementCount
        return TensorToWrite(name: tensor.name, dtype: target, shape: tensor.shape, byteCount: count * width) {
            (file: OutputFile) throws(FileError) in
            let chunk = min(castChunkElements, max(count, 1))
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk * width, alignment: 64)
            defer { buffer.deallocate() }
            let source = tensor.bytes.baseAddress
            var start = 0
            while start < count {
                let n = min(chunk, count - start)
                // canCast was checked when the plan was made, so this cannot throw.
                try? Cast.cast(source! + start * sourceWidth, from: tensor.dtype, into: buffer, as: target, count: n)
                try file.write(UnsafeRawBufferPointer(start: buffer, count: n * width))
                let released = tensor.fileOffset + start * sourceWidth
                tensor.file.release(released..<(released + n * sourceWidth))
                progress?.advance(by: n * width)
                start += n
            }
        }
    }

    static func refuseOverwritingInput(_ input: Checkpoint, inputPath: String, outputPath: String) throws(FileError) {
        guard let target = FileSystem.realPath(outputPath) else { return }
        var protected = Set(input.files.compactMap(FileSystem.realPath))
        if let root = FileSystem.realPath(inputPath) { protected.insert(root) }
        for file in input.files { if let dir = FileSystem.realPath(FileSystem.directoryName(file)) { protected.insert(dir) } }
        if protected.contains(target) { throw FileError(path: outputPath, problem: OutputError.destinationIsInput) }
    }

    static func copySidecars(from input: Checkpoint, into output: AtomicOutput) throws(FileError) {
        guard let first = input.files.first else { return }
        let directory = FileSystem.directoryName(first)
        for name in sidecarFiles {
            let path = FileSystem.join(directory, name)
            guard FileSystem.exists(path) else { continue }
            let mapping = try FileMapping(path: path)
            try writeSmallFile(output.path(of: name), Array(mapping.bytes))
        }
    }

    static func writeSmallFile(_ path: String, _ bytes: [UInt8]) throws(FileError) {
        let file = try OutputFile(creating: path)
        try file.write(bytes)
        try file.close()
    }
}

/// Name order in which digit runs compare as numbers: `layers.2` before `layers.10`.
public func naturalOrder(_ a: String, _ b: String) -> Bool {
    var i = a.utf8.makeIterator(), j = b.utf8.makeIterator()
    var x = i.next(), y = j.next()
    func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 48 && $0 <= 57 } ?? false }
    while let cx = x, let cy = y {
        if isDigit(cx) && isDigit(cy) {
            var nx = 0, ny = 0, lx = 0, ly = 0
            while isDigit(x) { nx = nx &* 10 &+ Int(x! - 48); lx += 1; x = i.next() }
            while isDigit(y) { ny = ny &* 10 &+ Int(y! - 48); ly += 1; y = j.next() }
            if nx != ny { return nx < ny }
            if lx != ly { return lx < ly }
            continue
        }
        if cx != cy { return cx < cy }
        x = i.next(); y = j.next()
    }
    return x == nil && y != nil
}
