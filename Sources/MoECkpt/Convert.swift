#if canImport(Glibc)
import Glibc
#endif

/// What `moeckpt convert` should produce.
public struct ConvertOptions {
    /// Cast float tensors to this dtype (integer, bool and complex tensors are copied unchanged).
    public var dtype: DType?
    /// Split the output into shards of at most this many bytes.
    public var maxShardBytes: Int?
    /// Rewrite tensor names into this layout (`NamingLayout.key`), with its description file.
    public var names: String?
    /// How HDF5 output stores its datasets.
    public var hdf5Compression: HDF5Compression
    /// Verify a `.moeckpt` input's checksums and padding as its tensors are copied.
    public var checkIntegrity: Bool
    public var progress: ProgressReporter?

    public init(dtype: DType? = nil, maxShardBytes: Int? = nil, names: String? = nil,
                hdf5Compression: HDF5Compression = .none, checkIntegrity: Bool = true, progress: ProgressReporter? = nil) {
        self.checkIntegrity = checkIntegrity
        self.dtype = dtype
        self.maxShardBytes = maxShardBytes
        self.names = names
        self.hdf5Compression = hdf5Compression
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
    /// Sidecar files of a model directory carried over to a directory output.
    static let sidecarFiles = ["config.json", "generation_config.json", "params.json"]
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
        try refuseWritingIntoShards(input, outputPath: outputPath)

        var source = input.tensors.map { NamedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, rope: $0.rope) }
        var metadata = input.metadata
        var description: (file: DescriptionFile, text: String)?
        var native: MoeckptWriter.Description?
        var fileStem = "model"
        let outputFormat = OutputFormat.of(outputPath)
        // A .moeckpt written from a canonical model converts back to the layout it came from.
        let names = options.names ?? (input.native?.layout == "canonical" && outputFormat != .moeckpt ? input.native?.sourceLayout : nil)
        if outputFormat == .moeckpt {
            if options.names != nil {
                throw FileError(path: outputPath, problem: OutputError.namesNotForNative)
            }
            if let model = try loadIfDescribed(input) {
                source = model.tensors.map { NamedTensor(name: $0.name, dtype: $0.dtype, shape: $0.shape, rope: $0.rope) }
                let config: JSONObject
                do { config = try ConfigFields.object(model.architecture.configJSON) } catch {
                    throw FileError(path: inputPath, problem: error)
                }
                let sourceLayout = model.layout.key == "canonical" ? input.native?.sourceLayout : model.layout.key
                native = MoeckptWriter.Description(model: config, layout: "canonical", sourceLayout: sourceLayout)
            } else {
                native = MoeckptWriter.Description()
            }
        } else if let key = names {
            let model = try ModelLoader.load(input)
            guard let layout = model.architecture.layouts.first(where: { $0.key == key }) else {
                throw FileError(path: inputPath, problem: ModelLoadError.layoutNotForArchitecture(
                    layout: key, modelType: model.architecture.modelType))
            }
            do throws(ModelLoadError) {
                source = try LayoutMapper.export(model.tensors, architecture: model.architecture, layout: layout)
            } catch {
                throw FileError(path: inputPath, problem: error)
            }
            metadata = metadata.filter { !MixtralConfig.isGGUFKey($0.key) }
            if outputFormat == nil || options.names != nil {
                description = try describe(model.architecture, as: layout.description, metadata: &metadata)
            }
            fileStem = layout.fileStem
        }

        var uncastable: [String] = []
        let integrity = options.checkIntegrity ? try NativeIntegrity(input) : nil
        let tensors = source.map { tensor -> TensorToWrite in
            guard let target = options.dtype, tensor.dtype.isFloatingPoint, tensor.dtype != target else {
                return copying(tensor, integrity: integrity, progress: options.progress)
            }
            guard Cast.canCast(from: tensor.dtype, to: target) else {
                uncastable.append(tensor.name)
                return copying(tensor, integrity: integrity, progress: options.progress)
            }
            return casting(tensor, to: target, integrity: integrity, progress: options.progress)
        }
        let hdf5 = outputFormat == .hdf5
        if metadata["format"] == nil && !hdf5 && outputFormat != .moeckpt {
            metadata["format"] = "pt"  // transformers requires it
        }

        options.progress?.start(totalBytes: tensors.reduce(0) { $0 + $1.byteCount })
        defer { options.progress?.finish() }

        let singleFile = outputFormat != nil && options.maxShardBytes == nil && options.names == nil
        if hdf5 {
            do throws(HDF5FormatError) { try HDF5Writer.check(tensors) } catch { throw FileError(path: outputPath, problem: error) }
        }
        let output = try AtomicOutput(destination: outputPath, isDirectory: !singleFile)
        do {
            return try write(tensors, metadata: metadata, input: input, output: output, singleFile: singleFile,
                             native: native, description: description, fileStem: fileStem, options: options, uncastable: uncastable)
        } catch {
            // Name the destination, not the temporary file.
            guard error.path.hasPrefix(output.temporaryPath) else { throw error }
            throw FileError(path: outputPath + error.path.dropFirst(output.temporaryPath.count), problem: error.problem)
        }
    }

    static func write(_ tensors: [TensorToWrite], metadata: [String: String], input: Checkpoint, output: AtomicOutput,
                      singleFile: Bool, native: MoeckptWriter.Description?, description: (file: DescriptionFile, text: String)?,
                      fileStem: String, options: ConvertOptions, uncastable: [String]) throws(FileError) -> ConvertResult {
        let outputPath = output.destination
        let hdf5 = OutputFormat.of(outputPath) == .hdf5
        var files: [String]
        var bytes = 0
        if singleFile, let native {
            let file = try OutputFile(creating: output.temporaryPath)
            try MoeckptWriter.write(tensors, metadata: metadata, description: native, to: file)
            try file.close()
            bytes = tensors.reduce(0) { $0 + $1.byteCount }
            files = [outputPath]
        } else if singleFile && hdf5 {
            try HDF5Writer.write(tensors.sorted { naturalOrder($0.name, $1.name) }, metadata: metadata,
                                 to: output.temporaryPath, compression: options.hdf5Compression)
            bytes = tensors.reduce(0) { $0 + $1.byteCount }
            files = [outputPath]
        } else if singleFile {
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
                let name = ShardPlanner.fileName(stem: fileStem, index, of: shards.count)
                let file = try OutputFile(creating: output.path(of: name))
                bytes += try SafetensorsWriter.write(shard, metadata: metadata, to: file)
                try file.close()
                for tensor in shard { weightMap[tensor.name] = name }
                files.append(FileSystem.join(outputPath, name))
            }
            if shards.count > 1 {
                let index = ShardPlanner.indexJSON(weightMap: weightMap, totalSize: bytes)
                try writeSmallFile(output.path(of: fileStem + ".safetensors.index.json"), Array(index.utf8))
            }
            if let description {
                if description.file != .ggufMetadata {
                    try writeSmallFile(output.path(of: description.file.rawValue), Array(description.text.utf8))
                }
                try copySidecars(from: input, into: output, only: description.file == .configJSON ? ["generation_config.json"] : [])
            } else {
                try copySidecars(from: input, into: output, only: sidecarFiles)
            }
        }
        try output.commit()
        return ConvertResult(output: outputPath, files: files, tensors: tensors.count, bytes: bytes,
                             uncastable: uncastable)
    }

    /// The canonical model when the checkpoint has a description (its problems are errors), nil when it has none.
    static func loadIfDescribed(_ input: Checkpoint) throws(FileError) -> LoadedModel? {
        do {
            _ = try ModelLoader.describe(input)
        } catch {
            if case ModelConfigError.noDescription? = error.problem as? ModelConfigError { return nil }
            throw error
        }
        return try ModelLoader.load(input)
    }

    /// The description file a layout keeps beside its weights (GGUF's goes into the metadata).
    static func describe(_ architecture: Architecture, as file: DescriptionFile,
                         metadata: inout [String: String]) throws(FileError) -> (file: DescriptionFile, text: String) {
        switch (file, architecture) {
        case (.configJSON, _):
            return (file, architecture.configJSON)
        case (.mistralParams, .mixtral(let config)):
            return (file, config.mistralParamsJSON)
        case (.ggufMetadata, .mixtral(let config)):
            metadata.merge(config.ggufMetadata) { _, new in new }
            return (file, "")
        default:
            return (.configJSON, architecture.configJSON)
        }
    }

    /// Writes the tensor's bytes straight from the input mapping (or chunk by chunk from a dataset
    /// read on demand), releasing pages once written so memory use stays flat however large the
    /// checkpoint.
    static func copying(_ tensor: NamedTensor, integrity: NativeIntegrity?, progress: ProgressReporter?) -> TensorToWrite {
        TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.rope.count) {
            (file: any ByteSink) throws(FileError) in
            for piece in tensor.rope.pieces {
                try integrity?.verify(piece)
                try piece.storage.stream(piece.offset..<(piece.offset + piece.count), chunk: copyChunkBytes, granule: 1) {
                    (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    try file.write(bytes)
                    progress?.advance(by: bytes.count)
                }
            }
        }
    }

    /// Casts piece by piece (pieces hold whole elements: layouts only split tensors at rows).
    static func casting(_ tensor: NamedTensor, to target: DType, integrity: NativeIntegrity?, progress: ProgressReporter?) -> TensorToWrite {
        let width = target.byteWidth!
        let sourceWidth = tensor.dtype.byteWidth!
        let count = tensor.rope.count / sourceWidth
        return TensorToWrite(name: tensor.name, dtype: target, shape: tensor.shape, byteCount: count * width) {
            (file: any ByteSink) throws(FileError) in
            let chunk = min(castChunkElements, max(count, 1))
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk * width, alignment: 64)
            defer { buffer.deallocate() }
            for piece in tensor.rope.pieces {
                try integrity?.verify(piece)
                try piece.storage.stream(piece.offset..<(piece.offset + piece.count), chunk: chunk * sourceWidth,
                                         granule: sourceWidth) { (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    let elements = bytes.count / sourceWidth
                    var start = 0
                    while start < elements {
                        let n = min(chunk, elements - start)
                        // canCast was checked when the plan was made, so this cannot throw.
                        try? Cast.cast(bytes.baseAddress! + start * sourceWidth, from: tensor.dtype,
                                       into: buffer, as: target, count: n)
                        try file.write(UnsafeRawBufferPointer(start: buffer, count: n * width))
                        progress?.advance(by: n * width)
                        start += n
                    }
                }
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

    /// A sharded input's directory is part of the input: writing into it would change what the
    /// next reader of that directory finds.
    static func refuseWritingIntoShards(_ input: Checkpoint, outputPath: String) throws(FileError) {
        guard input.files.count > 1 || input.format == .shardedSafetensors,
              let shardDirectory = input.files.first.flatMap({ FileSystem.realPath(FileSystem.directoryName($0)) }),
              let outputParent = FileSystem.realPath(FileSystem.directoryName(outputPath)) else { return }
        if outputParent == shardDirectory || outputParent.hasPrefix(shardDirectory + "/") {
            throw FileError(path: outputPath, problem: OutputError.insideShardDirectory(shardDirectory))
        }
    }

    static func copySidecars(from input: Checkpoint, into output: AtomicOutput, only names: [String]) throws(FileError) {
        guard let first = input.files.first else { return }
        let directory = FileSystem.directoryName(first)
        for name in names {
            let path = FileSystem.join(directory, name)
            guard FileSystem.exists(path) else { continue }
            let mapping = try FileMapping(path: path, maximumBytes: ModelLoader.descriptionLimitBytes)
            try writeSmallFile(output.path(of: name), Array(mapping.bytes))
        }
    }

    static func writeSmallFile(_ path: String, _ bytes: [UInt8]) throws(FileError) {
        let file = try OutputFile(creating: path)
        try file.write(bytes)
        try file.close()
    }
}

/// The single-file formats an output path names by its extension.
public enum OutputFormat: Sendable {
    case safetensors
    case hdf5
    case moeckpt

    public static func of(_ path: String) -> OutputFormat? {
        if path.hasSuffix(".safetensors") { return .safetensors }
        if path.hasSuffix(".moeckpt") { return .moeckpt }
        if path.hasSuffix(".h5") || path.hasSuffix(".hdf5") { return .hdf5 }
        return nil
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
