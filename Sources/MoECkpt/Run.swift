#if canImport(Glibc)
import Glibc
#endif
import MoECkptForward

/// The keys of input and output files (`moeckpt run`, `moeckpt verify`).
public enum IOKeys {
    public static let inputIDs = "input_ids"
    public static let inputs = "inputs"
    public static let logits = "logits"
    public static let outputs = "outputs"
    public static let auxLoss = "aux_loss"
    public static let routerZLoss = "router_z_loss"
    public static let routerLogits = "router_logits"
    public static let hiddenStates = "hidden_states"

    /// Whether verify knows what `key` means (`hidden_states.3`, `router_logits.0`, ...).
    static func isOutput(_ key: String) -> Bool {
        if [logits, outputs, auxLoss, routerZLoss, routerLogits].contains(key) { return true }
        for prefix in [hiddenStates, routerLogits] where key.hasPrefix(prefix + ".") {
            return Int(key.dropFirst(prefix.count + 1)).map { $0 >= 0 } ?? false
        }
        return false
    }
}

public struct RunOptions: Sendable {
    public var threads: Int
    /// Also compute the load-balancing loss and router z-loss from the router logits.
    public var auxLosses: Bool

    public init(threads: Int = RunOptions.defaultThreads, auxLosses: Bool = false) {
        self.threads = threads
        self.auxLosses = auxLosses
    }

    /// The machine's cores.
    public static var defaultThreads: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// Runs a loaded model on the inputs of a safetensors file.
public struct ModelRunner: Sendable {
    enum Forward: Sendable {
        case causalLM(MixtralForward, MixtralConfig)
        case module(SeedModuleForward)
    }

    public let model: LoadedModel
    let forward: Forward

    /// A `.moeckpt` model's checksums and padding are verified first: a damaged file never runs.
    public init(_ model: LoadedModel) throws(FileError) {
        if model.checkpoint.native != nil, let problem = MoeckptFile.check(model.checkpoint).problems.first {
            throw FileError(path: model.checkpoint.path, problem: problem)
        }
        self.model = model
        do {
            if case .mixtral(let config) = model.architecture {
                forward = .causalLM(try MixtralForward(model, config: config), config)
            } else {
                forward = .module(try SeedModuleForward(model))
            }
        } catch {
            throw FileError(path: model.checkpoint.path, problem: error)
        }
    }

    /// Every output the model produces for the inputs in `file`, under the standard keys.
    public func run(inputsFrom file: Checkpoint, options: RunOptions) throws(FileError) -> [String: HostTensor] {
        let fail = { (why: String) in FileError(path: file.path, problem: ForwardError.badInput(why)) }
        do {
            switch forward {
            case .causalLM(let forward, let config):
                guard let ids = file.tensor(named: IOKeys.inputIDs) else { throw fail("no \(IOKeys.inputIDs) tensor (I64 [batch, tokens])") }
                guard ids.shape.count == 2, ids.dtype == .i64 || ids.dtype == .i32 else {
                    throw fail("\(IOKeys.inputIDs) must be I64 or I32 [batch, tokens], not \(ids.dtype.name) \(ids.shape)")
                }
                let (batch, tokens) = (ids.shape[0], ids.shape[1])
                // Refuse inputs whose activations and outputs would not fit, before allocating them.
                let needed = MixtralForward.bytesNeeded(config, batch: batch, tokens: tokens, threads: options.threads)
                guard let needed, MemoryBudget.fits(needed) else {
                    throw fail("\(batch) x \(tokens) tokens would need more memory than this process may use"
                               + (needed.map { " (\(ByteSize.describe($0)))" } ?? ""))
                }
                try ids.load()
                let width = ids.dtype.byteWidth!
                let flat = (0..<(batch * tokens)).map { i in
                    width == 8 ? Int(ids.bytes.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                        : Int(ids.bytes.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                }
                let rows = (0..<batch).map { Array(flat[($0 * tokens)..<(($0 + 1) * tokens)]) }
                let out = try forward.forward(rows, threads: options.threads)
                var result: [String: HostTensor] = [
                    IOKeys.logits: HostTensor(shape: [batch, tokens, config.vocabSize], values: out.logits),
                ]
                for (n, state) in out.hiddenStates.enumerated() {
                    result["\(IOKeys.hiddenStates).\(n)"] = HostTensor(shape: [batch, tokens, config.hiddenSize], values: state)
                }
                for (n, logits) in out.routerLogits.enumerated() {
                    result["\(IOKeys.routerLogits).\(n)"] = HostTensor(shape: [batch * tokens, config.numExperts], values: logits)
                }
                if options.auxLosses {
                    result[IOKeys.auxLoss] = .scalar(AuxiliaryLoss.loadBalancing(out.routerLogits, experts: config.numExperts,
                                                                                 k: config.expertsPerToken))
                    result[IOKeys.routerZLoss] = .scalar(AuxiliaryLoss.routerZ(out.routerLogits, experts: config.numExperts))
                }
                return result
            case .module(let forward):
                guard let inputs = file.tensor(named: IOKeys.inputs) else { throw fail("no \(IOKeys.inputs) tensor") }
                guard Cast.canCast(from: inputs.dtype, to: .f32) else { throw fail("\(IOKeys.inputs) must be a float tensor") }
                guard let needed = forward.bytesNeeded(inputs: inputs.shape), MemoryBudget.fits(needed) else {
                    throw fail("\(IOKeys.inputs) of shape \(inputs.shape) would need more memory than this process may use")
                }
                var result = try forward.forward(HostTensor(shape: inputs.shape, values: try f32(inputs, in: file.path)), threads: options.threads)
                if options.auxLosses, case .sparseMoE(let c) = model.architecture, let logits = result[IOKeys.routerLogits] {
                    result[IOKeys.auxLoss] = .scalar(AuxiliaryLoss.loadBalancing([logits.values], experts: c.expertNumber, k: c.topK))
                    result[IOKeys.routerZLoss] = .scalar(AuxiliaryLoss.routerZ([logits.values], experts: c.expertNumber))
                }
                return result
            }
        } catch let error as FileError {
            throw error
        } catch let error as ForwardError {
            throw FileError(path: file.path, problem: error)
        } catch {
            throw fail("\(error)")
        }
    }

    /// Writes outputs as an F32 safetensors file (atomically).
    public static func write(_ outputs: [String: HostTensor], to path: String, metadata: [String: String] = [:]) throws(FileError) {
        let tensors = outputs.map { name, tensor in
            TensorToWrite(name: name, dtype: .f32, shape: tensor.shape, byteCount: tensor.values.count * 4) {
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
        throw FileError(path: path, problem: MemoryError(bytes: tensor.byteCount + 4 * tensor.elementCount, available: MemoryBudget.availableBytes))
    }
    var values = [Float](repeating: 0, count: tensor.elementCount)
    if let source = try tensor.load().baseAddress {
        values.withUnsafeMutableBytes { out in
            try? Cast.cast(source, from: tensor.dtype, into: out.baseAddress!, as: .f32, count: tensor.elementCount)
        }
    }
    return values
}
