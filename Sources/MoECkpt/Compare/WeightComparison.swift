import MoECkptForward

/// |a - b| <= atol + rtol |a| for every element, a from A (the original).
public struct WeightTolerance: Sendable, Equatable {
    public let atol: Double
    public let rtol: Double

    public init(atol: Double, rtol: Double) {
        self.atol = atol
        self.rtol = rtol
    }

    /// Without tolerances given: exact between equal dtypes, the coarser one's rounding between
    /// float dtypes; nil (figures only) when either is quantized or not a float.
    static func between(_ a: DType, _ b: DType, quantized: Bool) -> WeightTolerance? {
        func rounding(_ dtype: DType) -> Double? {
            switch dtype {
            case .f64, .f32: 0
            case .f16: 0x1p-11
            case .bf16: 0x1p-8
            case .f8E4M3, .f8E4M3FNUZ: 0x1p-4
            case .f8E5M2, .f8E5M2FNUZ: 0x1p-3
            default: nil
            }
        }
        guard !quantized, let ra = rounding(a), let rb = rounding(b) else { return nil }
        return a == b ? WeightTolerance(atol: 0, rtol: 0) : WeightTolerance(atol: 0, rtol: max(ra, rb))
    }

    func holds(_ a: Float, _ b: Float) -> Bool {
        let (a, b) = (Double(a), Double(b))
        return abs(a - b) <= atol + rtol * abs(a) || (a.isNaN && b.isNaN)
    }
}

/// One canonical tensor of A against the same in B.
public struct WeightComparison: Encodable, Sendable {
    public enum Result: String, Encodable, Sendable {
        case same
        case differs = "DIFFERS"
        case missingInB = "missing in B"
        case onlyInB = "only in B"
        case shapeDiffers = "SHAPE DIFFERS"
        /// Figures without a verdict (quantized against float, with no tolerance given).
        case reported
    }

    public let name: String
    public let shapeA: [Int]?
    public let shapeB: [Int]?
    public let dtypeA: String?
    public let dtypeB: String?
    public let maxAbs: Double?
    /// Σ(a - b)² / Σa².
    public let nmse: Double?
    public let cosine: Double?
    public let result: Result
    /// The likely mistake the values point to, when they point to one.
    public let mistake: String?

    enum CodingKeys: String, CodingKey {
        case name, shapeA = "shape_a", shapeB = "shape_b", dtypeA = "dtype_a", dtypeB = "dtype_b", maxAbs = "max_abs", nmse,
            cosine, result, mistake
    }

    static func between(
        _ a: LoadedModel, _ b: LoadedModel, deviations: LayoutMapper.Deviations, tolerance given: WeightTolerance?
    ) throws(FileError) -> [WeightComparison] {
        let context = Mistake.Context(
            tensorsA: Dictionary(a.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }),
            tensorsB: Dictionary(b.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }),
            indexA: ValueIndex(a.tensors), rotaryHeadDim: a.architecture.rotaryHeadDim)
        var out: [WeightComparison] = []
        for ta in a.tensors {
            guard let tb = context.tensorsB[ta.name] else {
                out.append(.init(only: ta, inA: true))
                continue
            }
            if let router = routerQuantized(ta, in: a, b) {
                out.append(router)
                continue
            }
            let quantized =
                a.quantized[ta.name] != nil || b.quantized[ta.name] != nil || ta.mlxQuantization != nil || tb.mlxQuantization != nil
            let tolerance = given ?? WeightTolerance.between(ta.dtype, tb.dtype, quantized: quantized)
            let compared = try compare(ta, tb, tolerance: tolerance, context: context)
            out.append(deviations.transposed.contains(ta.name) ? compared.storedTransposed() : compared)
        }
        for tb in b.tensors + deviations.unexpected where context.tensorsA[tb.name] == nil { out.append(.init(only: tb, inA: false)) }
        return out
    }

    /// How a tensor is stored: its dtype, or the MLX quantization it was dequantized from.
    static func stored(_ tensor: CanonicalTensor) -> String {
        guard let parameters = tensor.mlxQuantization else { return tensor.dtype.name }
        return parameters.mode == .affine ? "MLX \(parameters.bits)-bit" : "MLX \(parameters.mode.rawValue)"
    }

    /// The comparison of a tensor B stores transposed (and the loader transposed back): its
    /// values are A's when the transposition is the only mistake.
    func storedTransposed() -> WeightComparison {
        var shape = shapeB ?? []
        if shape.count >= 2 { shape.swapAt(shape.count - 1, shape.count - 2) }
        let mistake: Mistake? = result == .same || result == .reported ? .transposed : nil
        return WeightComparison(
            name: name, shapes: (shapeA, shape), dtypes: (dtypeA, dtypeB), figures: (maxAbs, nmse, cosine), result: .shapeDiffers,
            mistake: mistake?.description ?? self.mistake)
    }

    /// A router B holds in ggml blocks where A's is not: llama.cpp's converter and llama-quantize
    /// keep routers in F32, because a coarser router changes which experts run. Below 8 bits it
    /// differs. (mlx-lm quantizes Mixtral's router like the rest: that is its convention.)
    static func routerQuantized(_ ta: CanonicalTensor, in a: LoadedModel, _ b: LoadedModel) -> WeightComparison? {
        guard ta.name.hasSuffix(".moe.router"), a.quantized[ta.name] == nil, let quantized = b.quantized[ta.name],
            let tb = b.tensors.first(where: { $0.name == ta.name })
        else { return nil }
        let coarse = quantized.format.bitsPerWeight < 8
        return WeightComparison(
            ta, tb, stats: nil, result: coarse ? .differs : .reported,
            mistake: coarse ? .routerQuantized("\(quantized.format)") : nil)
    }

    private init(only tensor: CanonicalTensor, inA: Bool) {
        (name, maxAbs, nmse, cosine, mistake) = (tensor.name, nil, nil, nil, nil)
        (shapeA, dtypeA) = inA ? (tensor.shape, tensor.dtype.name) : (nil, nil)
        (shapeB, dtypeB) = inA ? (nil, nil) : (tensor.shape, tensor.dtype.name)
        result = inA ? .missingInB : .onlyInB
    }

    private init(
        name: String, shapes: ([Int]?, [Int]?), dtypes: (String?, String?), figures: (Double?, Double?, Double?), result: Result,
        mistake: String?
    ) {
        (self.name, shapeA, shapeB, dtypeA, dtypeB) = (name, shapes.0, shapes.1, dtypes.0, dtypes.1)
        (maxAbs, nmse, cosine, self.result, self.mistake) = (figures.0, figures.1, figures.2, result, mistake)
    }

    private init(_ a: CanonicalTensor, _ b: CanonicalTensor, stats: Statistics?, result: Result, mistake: Mistake?) {
        (name, shapeA, shapeB) = (a.name, a.shape, b.shape)
        (dtypeA, dtypeB) = (Self.stored(a), Self.stored(b))
        (maxAbs, nmse, cosine) = (stats?.maxAbs, stats?.nmse, stats?.cosine)
        (self.result, self.mistake) = (result, mistake?.description)
    }

    static func compare(
        _ a: CanonicalTensor, _ b: CanonicalTensor, tolerance: WeightTolerance?, context: Mistake.Context
    ) throws(FileError) -> WeightComparison {
        guard let ma = try Matrices(a), let mb = try Matrices(b) else {
            return WeightComparison(a, b, stats: nil, result: a.shape == b.shape ? .reported : .shapeDiffers, mistake: nil)
        }
        // (A tensor B stores transposed is transposed back by the loader: see storedTransposed.)
        guard a.shape == b.shape else {
            let other = try context.indexA.tensor(holding: mb, besides: a.name, tolerance: tolerance ?? .exact)
            return WeightComparison(a, b, stats: nil, result: .shapeDiffers, mistake: other.map { .anotherTensor(a.name, holding: $0) })
        }
        var stats = Statistics()
        var mismatched: [Int] = []
        for m in 0..<ma.count {
            let (va, vb) = (try ma.values(m), try mb.values(m))
            stats.add(va, vb)
            if let tolerance, !zip(va, vb).allSatisfy({ tolerance.holds($0, $1) }) { mismatched.append(m) }
        }
        guard let tolerance else { return WeightComparison(a, b, stats: stats, result: .reported, mistake: nil) }
        guard !mismatched.isEmpty else { return WeightComparison(a, b, stats: stats, result: .same, mistake: nil) }
        let mistake = try Mistake.diagnose(a, ma, mb, mismatched: mismatched, tolerance: tolerance, context: context)
        return WeightComparison(a, b, stats: stats, result: .differs, mistake: mistake)
    }
}

extension WeightTolerance {
    static let exact = WeightTolerance(atol: 0, rtol: 0)
}

/// Sums for max |a - b|, NMSE and cosine similarity, over chunks.
struct Statistics {
    var maxAbs = 0.0
    var squaredDifference = 0.0
    var squaredA = 0.0
    var squaredB = 0.0
    var dot = 0.0

    mutating func add(_ a: [Float], _ b: [Float]) {
        for (x, y) in zip(a, b) {
            let (x, y) = (Double(x), Double(y))
            maxAbs = max(maxAbs, abs(x - y))
            squaredDifference += (x - y) * (x - y)
            squaredA += x * x
            squaredB += y * y
            dot += x * y
        }
    }

    var nmse: Double { squaredA > 0 ? squaredDifference / squaredA : (squaredDifference == 0 ? 0 : .infinity) }
    var cosine: Double { squaredA > 0 && squaredB > 0 ? dot / (squaredA * squaredB).squareRoot() : (squaredA == squaredB ? 1 : 0) }
}

/// A tensor as `count` matrices [rows, columns] (a stack of experts; a vector is one row), read
/// one at a time as fp32.
struct Matrices {
    let tensor: CanonicalTensor
    let count: Int
    let rows: Int
    let columns: Int
    let width: Int

    init?(_ tensor: CanonicalTensor) throws(FileError) {
        guard let width = tensor.dtype.byteWidth, Cast.canCast(from: tensor.dtype, to: .f32) else { return nil }
        let shape = tensor.shape
        (self.tensor, self.width) = (tensor, width)
        columns = shape.last ?? 1
        rows = shape.count >= 2 ? shape[shape.count - 2] : 1
        count = shape.count > 2 ? shape.dropLast(2).reduce(1, *) : 1
        do { try tensor.rope.load() } catch { throw error }
    }

    func values(_ m: Int) throws(FileError) -> [Float] {
        let bytes = rows * columns * width
        do {
            return try WeightReader.f32(tensor.name, dtype: tensor.dtype, tensor.rope.slice(m * bytes, bytes))
        } catch {
            throw FileError(path: tensor.name, problem: CompareError.unreadable(error.description))
        }
    }

    /// The first `count` values of the first matrix (fewer when it has fewer).
    func prefix(_ count: Int) throws(FileError) -> [Float] {
        let count = min(count, rows * columns)
        do {
            return try WeightReader.f32(tensor.name, dtype: tensor.dtype, tensor.rope.slice(0, count * width))
        } catch {
            throw FileError(path: tensor.name, problem: CompareError.unreadable(error.description))
        }
    }

    static func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows {
            for c in 0..<columns { out[c * rows + r] = values[r * columns + c] }
        }
        return out
    }
}
