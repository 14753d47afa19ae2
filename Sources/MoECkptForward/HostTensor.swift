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

    func tensor(_ name: String) throws(ForwardError) -> CanonicalTensor {
        guard let tensor = model.tensor(name) else { throw .badInput("missing weight \(name)") }
        guard tensor.dtype.byteWidth != nil, Cast.canCast(from: tensor.dtype, to: .f32) else {
            throw .unsupportedWeightDtype(tensor.name, tensor.dtype)
        }
        return tensor
    }

    func f32(_ name: String) throws(ForwardError) -> [Float] { try Self.f32(tensor(name)) }

    /// A weight matrix, in place where its dtype and bytes allow.
    func matrix(_ name: String) throws(ForwardError) -> WeightMatrix { try WeightMatrix(tensor(name)) }

    static func f32(_ tensor: CanonicalTensor) throws(ForwardError) -> [Float] {
        do { try tensor.rope.load() } catch { throw .unreadable(error.description) }
        return try f32(tensor.name, dtype: tensor.dtype, tensor.rope)
    }

    /// The bytes of a loaded rope, widened to fp32.
    static func f32(_ name: String, dtype: DType, _ rope: ByteRope) throws(ForwardError) -> [Float] {
        guard let width = dtype.byteWidth, Cast.canCast(from: dtype, to: .f32) else {
            throw .unsupportedWeightDtype(name, dtype)
        }
        var out = [Float](repeating: 0, count: rope.count / width)
        out.withUnsafeMutableBytes { destination in
            var offset = 0
            for piece in rope.pieces {
                let count = piece.count / width
                try? Cast.cast(piece.bytes.baseAddress!, from: dtype, into: destination.baseAddress! + offset * 4,
                               as: .f32, count: count)
                offset += count
            }
        }
        return out
    }
}

/// A weight matrix as the kernels read it: F32 or BF16, in place in the checkpoint's file mapping
/// when its bytes are one contiguous run there, otherwise widened into fp32 memory of its own.
struct WeightMatrix: @unchecked Sendable {
    let type: MatrixWeightType
    let base: UnsafeRawPointer
    /// Keeps `base` alive: the file mapping, or the array.
    let owner: AnyObject

    /// fp32 values of its own.
    init(_ values: [Float]) {
        let box = ArrayBox(values)
        self.init(type: .f32, base: box.base, owner: box)
    }

    /// bfloat16 bit patterns of its own.
    init(bf16 values: [UInt16]) {
        let box = ArrayBox(values)
        self.init(type: .bf16, base: box.base, owner: box)
    }

    private init(type: MatrixWeightType, base: UnsafeRawPointer, owner: AnyObject) {
        (self.type, self.base, self.owner) = (type, base, owner)
    }

    /// The matrix starting `elements` further on (one expert of a stack), kept alive by the same owner.
    func advanced(by elements: Int) -> WeightMatrix {
        WeightMatrix(type: type, base: base + elements * type.byteWidth, owner: owner)
    }

    /// Bytes `range` of a tensor (one expert of a stack, or all of it).
    init(_ tensor: CanonicalTensor, bytes range: Range<Int>? = nil) throws(ForwardError) {
        do { try tensor.rope.load() } catch { throw .unreadable(error.description) }
        let rope = range.map { tensor.rope.slice($0.lowerBound, $0.count) } ?? tensor.rope
        let inPlace: MatrixWeightType? = switch tensor.dtype {
        case .f32: .f32
        case .bf16: .bf16
        default: nil
        }
        if let inPlace, rope.pieces.count == 1, let piece = rope.pieces.first, let start = piece.bytes.baseAddress {
            self.init(type: inPlace, base: start, owner: piece.storage)
        } else {
            self.init(try WeightReader.f32(tensor.name, dtype: tensor.dtype, rope))
        }
    }
}

/// A copy of an array's elements in memory that stays put for as long as a weight matrix refers
/// to it (cache-line aligned).
final class ArrayBox: @unchecked Sendable {
    let base: UnsafeRawPointer

    init<Element: BitwiseCopyable>(_ values: [Element]) {
        let bytes = max(1, values.count * MemoryLayout<Element>.stride)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values.withUnsafeBytes { if let source = $0.baseAddress { memory.copyMemory(from: source, byteCount: $0.count) } }
        base = UnsafeRawPointer(memory)
    }

    deinit { UnsafeMutableRawPointer(mutating: base).deallocate() }
}

/// A linear layer, [outputs, inputs], and optional fp32 bias.
struct LinearLayer: Sendable {
    let weight: WeightMatrix
    let bias: [Float]?
    let inputs: Int
    let outputs: Int

    init(weight: WeightMatrix, bias: [Float]? = nil, inputs: Int, outputs: Int) {
        self.weight = weight
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
    }

    init(weight: [Float], bias: [Float]? = nil, inputs: Int, outputs: Int) {
        self.init(weight: WeightMatrix(weight), bias: bias, inputs: inputs, outputs: outputs)
    }

    /// y = x wᵀ + b for `rows` rows of x.
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, threads: Int) {
        withExtendedLifetime(weight.owner) {
            func run(_ b: UnsafePointer<Float>?) {
                Linear.forward(weight.type, x: x, rows: rows, inputs: inputs, weight: weight.base, outputs: outputs,
                               bias: b, into: y, threads: threads)
            }
            if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
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

/// One linear layer per expert: weights [experts][outputs, inputs], bias [experts, outputs].
struct ExpertLinears: Sendable {
    let layers: [LinearLayer]

    /// A stacked tensor [experts, outputs, inputs], each expert in place where it can be.
    init(_ tensor: CanonicalTensor, experts: Int, inputs: Int, outputs: Int) throws(ForwardError) {
        let bytes = tensor.rope.count / max(experts, 1)
        var layers: [LinearLayer] = []
        for e in 0..<experts {
            layers.append(LinearLayer(weight: try WeightMatrix(tensor, bytes: (e * bytes)..<((e + 1) * bytes)),
                                      inputs: inputs, outputs: outputs))
        }
        self.layers = layers
    }

    init(layers: [LinearLayer]) { self.layers = layers }

    func apply(expert e: Int, _ x: [Float], rows: Int, threads: Int) -> [Float] {
        layers[e].apply(x, rows: rows, threads: threads)
    }
}
