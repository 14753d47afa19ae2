import MoECkptForward

#if canImport(Glibc)
import Glibc
#endif

public struct RunOptions: Sendable {
    public var threads: Int
    /// Also compute the load-balancing loss and router z-loss from the router logits.
    public var auxLosses: Bool
    /// How the linear layers compute (`.ggml`: llama.cpp's integer products on ggml's block formats).
    public var arithmetic: Arithmetic

    public init(threads: Int = RunOptions.defaultThreads, auxLosses: Bool = false, arithmetic: Arithmetic = .exact) {
        self.threads = threads
        self.auxLosses = auxLosses
        self.arithmetic = arithmetic
    }

    /// The machine's cores.
    public static var defaultThreads: Int { CPUBudget.usableCPUs }
}

/// Runs a loaded model on the inputs of a file (any format moeckpt reads).
public struct ModelRunner: Sendable {
    public let model: LoadedModel
    let forward: any ForwardPass

    /// A checkpoint's stored checksums (a `.moeckpt` file's) are verified first: a damaged file
    /// never runs.
    public init(_ model: LoadedModel) throws(FileError) {
        if let problem = model.checkpoint.verifyChecksums()?.problems.first {
            throw FileError(path: model.checkpoint.path, problem: problem)
        }
        self.model = model
        do { forward = try model.architecture.forwardPass(model) } catch { throw FileError(path: model.checkpoint.path, problem: error) }
    }

    /// Every output the model produces for the inputs in `file`.
    public func run(inputsFrom file: Checkpoint, options: RunOptions) throws(FileError) -> [OutputKey: HostTensor] {
        let fail = { (why: String) in FileError(path: file.path, problem: ForwardError.badInput(why)) }
        let input: ModelInput
        switch forward.input {
        case .inputIDs:
            let key = InputKey.inputIDs.rawValue
            guard let ids = file.tensor(named: key) else { throw fail("no \(key) tensor (I64 [batch, tokens])") }
            guard ids.shape.count == 2, ids.dtype == .i64 || ids.dtype == .i32 else {
                throw fail("\(key) must be I64 or I32 [batch, tokens], not \(ids.dtype.name) \(ids.shape)")
            }
            let (batch, tokens) = (ids.shape[0], ids.shape[1])
            try checkMemory(batch: batch, tokens: tokens, options: options, fail: fail)
            try ids.load()
            let width = ids.dtype.byteWidth!
            let flat = (0..<(batch * tokens)).map { i in
                width == 8
                    ? Int(ids.bytes.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                    : Int(ids.bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            }
            input = .tokenIDs((0..<batch).map { Array(flat[($0 * tokens)..<(($0 + 1) * tokens)]) })
        case .inputs:
            let key = InputKey.inputs.rawValue
            guard let inputs = file.tensor(named: key) else { throw fail("no \(key) tensor") }
            guard Cast.canCast(from: inputs.dtype, to: .f32) else { throw fail("\(key) must be a float tensor") }
            guard let needed = forward.bytesNeeded(input: inputs.shape, threads: options.threads), MemoryBudget.fits(needed) else {
                throw fail("\(key) of shape \(inputs.shape) would need more memory than this process may use")
            }
            input = .values(HostTensor(shape: inputs.shape, values: try f32(inputs, in: file.path)))
        }
        do {
            return try forwardRun(input, options: options)
        } catch {
            throw FileError(path: file.path, problem: error)
        }
    }

    /// Whether the model takes token ids (a causal LM) rather than values (a module).
    public var takesTokenIDs: Bool { forward.input == .inputIDs }

    /// Every output the model produces for these token ids ([batch][tokens]); `source` names them
    /// in errors.
    public func run(tokenIDs ids: [[Int]], source: String, options: RunOptions) throws(FileError) -> [OutputKey: HostTensor] {
        let fail = { (why: String) in FileError(path: source, problem: ForwardError.badInput(why)) }
        try checkMemory(batch: ids.count, tokens: ids.first?.count ?? 0, options: options, fail: fail)
        do {
            return try forwardRun(.tokenIDs(ids), options: options)
        } catch {
            throw FileError(path: source, problem: error)
        }
    }

    private func forwardRun(_ input: ModelInput, options: RunOptions) throws(ForwardError) -> [OutputKey: HostTensor] {
        try Linear.$arithmetic.withValue(options.arithmetic) {
            Result { () throws(ForwardError) in try forward.run(input, threads: options.threads, auxLosses: options.auxLosses) }
        }.get()
    }

    /// Refuses inputs whose activations and outputs would not fit, before allocating them.
    private func checkMemory(batch: Int, tokens: Int, options: RunOptions, fail: (String) -> FileError) throws(FileError) {
        let needed = forward.bytesNeeded(input: [batch, tokens], threads: options.threads)
        guard let needed, MemoryBudget.fits(needed) else {
            throw fail(
                "\(batch) x \(tokens) tokens would need more memory than this process may use"
                    + (needed.map { " (\(ByteSize.describe($0)))" } ?? ""))
        }
    }

    /// Writes outputs as an F32 safetensors file (atomically).
    public static func write(_ outputs: [OutputKey: HostTensor], to path: String, metadata: [String: String] = [:]) throws(FileError) {
        let tensors = outputs.map { key, tensor in
            TensorToWrite(name: key.description, dtype: .f32, shape: tensor.shape, byteCount: tensor.values.count * 4) {
                (file: any ByteSink) throws(FileError) in
                let result = tensor.values.withUnsafeBytes { raw in Result { () throws(FileError) in try file.write(raw) } }
                try result.get()
            }
        }
        let output = try AtomicOutput(destination: path, isDirectory: false)
        let file = try OutputFile(creating: output.temporaryPath)
        try SafetensorsWriter.write(tensors, metadata: metadata, to: file)
        try file.close()
        try output.commit()
    }
}

/// A stored float tensor as fp32 values.
func f32(_ tensor: StoredTensor, in path: String) throws(FileError) -> [Float] {
    guard Cast.canCast(from: tensor.dtype, to: .f32) else {
        throw FileError(path: path, problem: ForwardError.badInput("\(tensor.name) is \(tensor.dtype.name), not a float tensor"))
    }
    // Its bytes (read on demand for HDF5) and the fp32 copy.
    guard MemoryBudget.fits(tensor.byteCount + 4 * tensor.elementCount) else {
        throw FileError(
            path: path, problem: MemoryError(bytes: tensor.byteCount + 4 * tensor.elementCount, available: MemoryBudget.availableBytes))
    }
    var values = [Float](repeating: 0, count: tensor.elementCount)
    if let source = try tensor.load().baseAddress {
        values.withUnsafeMutableBytes { out in
            try? Cast.cast(source, from: tensor.dtype, into: out.baseAddress!, as: .f32, count: tensor.elementCount)
        }
    }
    return values
}
