import Foundation

/// Row-wise and element-wise kernels. They are linear in the data size, so they are written for
/// clarity; the matrix products (Linear) are where the time goes.
public enum Softmax {
    /// Each row of `rows x columns` in place: exp(x - max) / sum, in fp32 as PyTorch computes it.
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows { row(x + r * columns, columns) }
    }

    public static func row(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        var maximum = -Float.infinity
        for i in 0..<n { maximum = max(maximum, p[i]) }
        if maximum == -.infinity { maximum = 0 }
        // exp 16 lanes at a time (attention rows are long); the sum in lanes, then across them.
        let sum = KernelVariant.selected.expShiftedSum(p, count: n, shift: maximum)
        for i in 0..<n { p[i] /= sum }
    }

    /// log(sum(exp(row))), stable.
    public static func logSumExp(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var maximum = -Float.infinity
        for i in 0..<n { maximum = max(maximum, p[i]) }
        var sum: Float = 0
        for i in 0..<n { sum += expf(p[i] - maximum) }
        return maximum + logf(sum)
    }
}

public enum Norm {
    /// transformers' MixtralRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, variance in fp32.
    public static func rms(
        _ x: UnsafePointer<Float>, rows: Int, columns: Int, weight: UnsafePointer<Float>,
        eps: Float, into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let (src, dst) = (x + r * columns, y + r * columns)
            var sumSquares: Float = 0
            for i in 0..<columns { sumSquares += src[i] * src[i] }
            let scale = 1 / (sumSquares / Float(columns) + eps).squareRoot()
            for i in 0..<columns { dst[i] = weight[i] * (src[i] * scale) }
        }
    }

    /// nn.LayerNorm: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
    public static func layer(
        _ x: UnsafePointer<Float>, rows: Int, columns: Int, weight: UnsafePointer<Float>,
        bias: UnsafePointer<Float>, eps: Float, into y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows {
            let (src, dst) = (x + r * columns, y + r * columns)
            var mean: Float = 0
            for i in 0..<columns { mean += src[i] }
            mean /= Float(columns)
            var variance: Float = 0
            for i in 0..<columns { variance += (src[i] - mean) * (src[i] - mean) }
            variance /= Float(columns)
            let scale = 1 / (variance + eps).squareRoot()
            for i in 0..<columns { dst[i] = (src[i] - mean) * scale * weight[i] + bias[i] }
        }
    }
}

public enum Activation {
    public typealias Vector = SIMD16<Float>

    /// silu(gate) * up, in place into `gate` (Mixtral's expert): 16 lanes at a time with the
    /// vector exp (`exp`), the remainder with `expf`.
    public static func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        KernelVariant.selected.siluMultiply(gate, up, count: count)
    }

    /// e^x for 16 lanes: x = n ln2 + r with |r| <= ln2 / 2, e^r by Cephes' degree-6 polynomial,
    /// scaled by 2^n through the exponent bits (Sources/CKernels/elementwise.h). Within 2 ulp of
    /// `expf` over the float range; inputs above 88 give ~1.7e38; below -87 (where expf turns
    /// subnormal), 0, so that exp(-inf) is 0 as softmax's masked entries need.
    public static func exp(_ x: Vector, variant: KernelVariant = .selected) -> Vector {
        var (input, output) = (x, Vector())
        withUnsafePointer(to: &input) { i in
            withUnsafeMutablePointer(to: &output) { o in
                i.withMemoryRebound(to: Float.self, capacity: 16) { i in
                    o.withMemoryRebound(to: Float.self, capacity: 16) { variant.exp(i, into: $0, count: 16) }
                }
            }
        }
        return output
    }

    public static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(x[i] > 0) { x[i] = x[i].isNaN ? x[i] : 0 }
    }
}

/// The activation of a gated MLP, `act(gate) * up`, by the names transformers' ACT2FN gives them.
public enum GatedActivation: String, Sendable, CaseIterable {
    case silu
    /// The exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (`gelu`).
    case gelu
    /// GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
    /// (`gelu_pytorch_tanh`, `gelu_new`).
    case geluTanh = "gelu_pytorch_tanh"
    case relu

    /// The activation a config's `hidden_act` names (nil: one moeckpt does not implement).
    public init?(hiddenAct: String) {
        switch hiddenAct {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new": self = .geluTanh
        case "relu": self = .relu
        default: return nil
        }
    }

    /// act(gate) * up, in place into `gate`.
    public func multiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        switch self {
        case .silu: Activation.siluMultiply(gate, up, count: count)
        case .gelu:
            for i in 0..<count { gate[i] = 0.5 * gate[i] * (1 + erff(gate[i] * 0.707_106_77)) * up[i] }
        case .geluTanh:
            for i in 0..<count {
                let x = gate[i]
                gate[i] = 0.5 * x * (1 + tanhf(0.797_884_56 * (x + 0.044_715 * x * x * x))) * up[i]
            }
        case .relu:
            for i in 0..<count { gate[i] = (gate[i] > 0 || gate[i].isNaN ? gate[i] : 0) * up[i] }
        }
    }
}

/// Rotary position embedding in transformers' rotate-half form.
public struct Rotary: Sendable {
    public let headDim: Int
    /// cos and sin per position, [positions, headDim] (the angle table repeated for both halves).
    public let cos: [Float]
    public let sin: [Float]

    /// inv_freq = 1 / theta^(2i/d) and angles position * inv_freq, in fp32 as transformers
    /// computes them.
    public init(headDim: Int, theta: Double, positions: Int) {
        self.init(headDim: headDim, inverseFrequency: Self.inverseFrequency(headDim: headDim, theta: theta), positions: positions)
    }

    /// 1 / theta^(2i/d), in fp32 as transformers computes it.
    public static func inverseFrequency(headDim: Int, theta: Double) -> [Float] {
        (0..<(headDim / 2)).map { i in 1 / powf(Float(theta), Float(2 * i) / Float(headDim)) }
    }

    /// Angles position * inv_freq; cos and sin multiplied by `scale` (YaRN's attention factor).
    public init(headDim: Int, inverseFrequency: [Float], positions: Int, scale: Float = 1) {
        self.headDim = headDim
        let half = headDim / 2
        var cos = [Float](repeating: 0, count: positions * headDim)
        var sin = cos
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequency[i]
                let (c, s) = (Foundation.cos(angle) * scale, Foundation.sin(angle) * scale)
                cos[p * headDim + i] = c; cos[p * headDim + half + i] = c
                sin[p * headDim + i] = s; sin[p * headDim + half + i] = s
            }
        }
        self.cos = cos
        self.sin = sin
    }

    /// YaRN (transformers' `_compute_yarn_parameters`): frequencies blended between the original
    /// and the ones divided by `factor`, by a linear ramp over the dimensions between the
    /// correction range of `betaFast` and `betaSlow` rotations; and the cos/sin scale.
    public static func yarn(
        headDim: Int, theta: Double, factor: Double, originalMaxPositions: Int, betaFast: Double, betaSlow: Double,
        truncate: Bool, attentionFactor: Double?, mscale: Double?, mscaleAllDim: Double?
    ) -> (inverseFrequency: [Float], scale: Float) {
        func getMscale(_ scale: Double, _ m: Double = 1) -> Double { scale <= 1 ? 1 : 0.1 * m * Foundation.log(scale) + 1 }
        let scale: Double
        if let attentionFactor {
            scale = attentionFactor
        } else if let mscale, let mscaleAllDim, mscale != 0, mscaleAllDim != 0 {
            scale = getMscale(factor, mscale) / getMscale(factor, mscaleAllDim)
        } else {
            scale = getMscale(factor)
        }
        let dim = Double(headDim)
        func correctionDim(_ rotations: Double) -> Double {
            dim * Foundation.log(Double(originalMaxPositions) / (rotations * 2 * Double.pi)) / (2 * Foundation.log(theta))
        }
        var (low, high) = (correctionDim(betaFast), correctionDim(betaSlow))
        if truncate { (low, high) = (low.rounded(.down), high.rounded(.up)) }
        (low, high) = (max(low, 0), min(high, dim - 1))
        if low == high { high += 0.001 }
        let extrapolation = inverseFrequency(headDim: headDim, theta: theta)
        let positionFrequencies = (0..<(headDim / 2)).map { i in powf(Float(theta), Float(2 * i) / Float(headDim)) }
        let interpolation = positionFrequencies.map { 1 / (Float(factor) * $0) }
        let frequencies = (0..<(headDim / 2)).map { i -> Float in
            let ramp = min(max((Float(i) - Float(low)) / Float(high - low), 0), 1)
            let extrapolationFactor = 1 - ramp
            return interpolation[i] * (1 - extrapolationFactor) + extrapolation[i] * extrapolationFactor
        }
        return (frequencies, Float(scale))
    }

    /// Rotates one head vector at `position` in place: x * cos + rotate_half(x) * sin.
    public func apply(_ x: UnsafeMutablePointer<Float>, position: Int) {
        let half = headDim / 2
        let base = position * headDim
        for i in 0..<half {
            let (a, b) = (x[i], x[half + i])
            x[i] = a * cos[base + i] - b * sin[base + i]
            x[half + i] = b * cos[base + half + i] + a * sin[base + half + i]
        }
    }
}
