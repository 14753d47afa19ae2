import MoECkptFormats
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// An fp32 tensor in memory: the activations of a forward pass, and its inputs and outputs.
public struct HostTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public init(rows: Int, columns: Int) {
        self.init(shape: [rows, columns], values: [Float](repeating: 0, count: rows * columns))
    }

    public static func scalar(_ value: Float) -> HostTensor { HostTensor(shape: [], values: [value]) }

    var rows: Int { shape.count >= 2 ? shape.dropLast().reduce(1, *) : 1 }
    var columns: Int { shape.last ?? 1 }
}

/// Why a forward pass cannot run.
public enum ForwardError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedWeightDtype(String, DType)
    case badInput(String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .unsupportedWeightDtype(let name, let dtype):
            "weight \(name) is \(dtype.name); the forward pass reads float weights (F64, F32, F16, BF16, F8)"
        case .badInput(let why): why
        case .unreadable(let why): why
        }
    }
}

/// Canonical tensors turned into fp32 arrays (F16, BF16 and F8 widen exactly).
struct WeightReader {
    let model: LoadedModel

    func f32(_ name: String) throws(ForwardError) -> [Float] {
        guard let tensor = model.tensor(name) else { throw .badInput("missing weight \(name)") }
        return try Self.f32(tensor)
    }

    static func f32(_ tensor: CanonicalTensor) throws(ForwardError) -> [Float] {
        guard let width = tensor.dtype.byteWidth, Cast.canCast(from: tensor.dtype, to: .f32) else {
            throw .unsupportedWeightDtype(tensor.name, tensor.dtype)
        }
        do { try tensor.rope.load() } catch { throw .unreadable(error.description) }
        var out = [Float](repeating: 0, count: tensor.rope.count / width)
        out.withUnsafeMutableBytes { destination in
            var offset = 0
            for piece in tensor.rope.pieces {
                let count = piece.count / width
                try? Cast.cast(piece.bytes.baseAddress!, from: tensor.dtype, into: destination.baseAddress! + offset * 4,
                               as: .f32, count: count)
                offset += count
            }
        }
        return out
    }
}

/// A linear layer's fp32 weights, [outputs, inputs], and optional bias.
struct LinearLayer: Sendable {
    let weight: [Float]
    let bias: [Float]?
    let inputs: Int
    let outputs: Int

    init(weight: [Float], bias: [Float]? = nil, inputs: Int, outputs: Int) {
        self.weight = weight
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
    }

    /// y = x wᵀ + b for `rows` rows of x.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, threads: Int) {
        weight.withUnsafeBufferPointer { w in
            if let bias {
                bias.withUnsafeBufferPointer { b in
                    Linear.forward(x: x, rows: rows, inputs: inputs, weight: w.baseAddress!, outputs: outputs,
                                   bias: b.baseAddress!, into: y, threads: threads)
                }
            } else {
                Linear.forward(x: x, rows: rows, inputs: inputs, weight: w.baseAddress!, outputs: outputs,
                               bias: nil, into: y, threads: threads)
            }
        }
    }

    func apply(_ x: [Float], rows: Int, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in apply(xp.baseAddress!, rows: rows, into: yp.baseAddress!, threads: threads) }
        }
        return y
    }
}

/// One linear layer per expert, stacked: weight [experts, outputs, inputs], bias [experts, outputs].
struct ExpertLinears: Sendable {
    let weight: [Float]
    let bias: [Float]?
    let experts: Int
    let inputs: Int
    let outputs: Int

    func apply(expert e: Int, _ x: [Float], rows: Int, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        guard rows > 0 else { return y }
        let biasSlice = bias.map { Array($0[(e * outputs)..<((e + 1) * outputs)]) }
        weight.withUnsafeBufferPointer { w in
            let layer = UnsafeBufferPointer(rebasing: w[(e * outputs * inputs)..<((e + 1) * outputs * inputs)])
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    func run(_ b: UnsafePointer<Float>?) {
                        Linear.forward(x: xp.baseAddress!, rows: rows, inputs: inputs, weight: layer.baseAddress!,
                                       outputs: outputs, bias: b, into: yp.baseAddress!, threads: threads)
                    }
                    if let biasSlice { biasSlice.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
                }
            }
        }
        return y
    }
}
