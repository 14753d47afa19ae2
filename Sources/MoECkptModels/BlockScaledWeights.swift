import MoECkptFormats
import MoECkptTensors

/// Weights stored as FP8 with a scale per block (DeepSeek-V3's released checkpoints:
/// `quantization_config` `{"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}`):
/// `X.weight` F8_E4M3 [out, in] and `X.weight_scale_inv` F32 [ceil(out / rows), ceil(in / columns)],
/// the value being the FP8 number times its block's scale.
public struct BlockScaledWeights: Sendable, Equatable {
    public var rows: Int
    public var columns: Int

    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }

    public static let scaleSuffix = "_scale_inv"

    /// The stored tensors with each scaled weight replaced by its F32 values, computed when first
    /// read (a conversion holds one at a time; the forward pass reads the FP8 bytes and their
    /// scales in place, through the derived storage's `origin`), and the scales removed; the
    /// problems of any that cannot be dequantized.
    func dequantize(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var problems: [String] = []
        var out: [NamedTensor] = []
        for tensor in stored where !tensor.name.hasSuffix(Self.scaleSuffix) {
            guard let scale = byName[tensor.name + Self.scaleSuffix] else {
                out.append(tensor)
                continue
            }
            do throws(BlockScaleError) {
                out.append(try dequantize(tensor, scale: scale))
            } catch {
                problems.append(error.description)
            }
        }
        for tensor in stored where tensor.name.hasSuffix(Self.scaleSuffix) {
            if byName[String(tensor.name.dropLast(Self.scaleSuffix.count))] == nil {
                problems.append("\(tensor.name) scales no weight")
            }
        }
        return (out, problems)
    }

    struct BlockScaleError: Error, CustomStringConvertible {
        let description: String
    }

    private func dequantize(_ weight: NamedTensor, scale: NamedTensor) throws(BlockScaleError) -> NamedTensor {
        guard weight.shape.count == 2, Cast.canCast(from: weight.dtype, to: .f32), let width = weight.dtype.byteWidth else {
            throw BlockScaleError(description: "\(weight.name) is \(weight.dtype.name) \(weight.shape), not a scaled matrix")
        }
        let (rows, columns) = (weight.shape[0], weight.shape[1])
        let blocks = [(rows + self.rows - 1) / self.rows, (columns + self.columns - 1) / self.columns]
        guard scale.dtype == .f32, scale.shape == blocks else {
            throw BlockScaleError(description: "\(scale.name) is \(scale.dtype.name) \(scale.shape), expected F32 \(blocks)")
        }
        guard let bytes = (Checked(rows) * columns * 4).value else {
            throw BlockScaleError(description: "\(weight.name): its size overflows")
        }
        let (dtype, block) = (weight.dtype, self)
        let origin = BlockScaledMatrix(
            name: weight.name, dtype: weight.dtype, rows: rows, columns: columns, values: weight.rope, scales: scale.rope,
            blockRows: self.rows, blockColumns: self.columns)
        let storage = DerivedStorage(name: weight.name, byteCount: bytes, sources: [weight.rope, scale.rope], origin: origin) {
            sources, out in
            let (values, scales) = (sources[0], sources[1])
            let target = out.baseAddress!.assumingMemoryBound(to: Float.self)
            try? Cast.cast(values.baseAddress!, from: dtype, into: out.baseAddress!, as: .f32, count: values.count / width)
            for r in 0..<rows {
                for c in 0..<columns {
                    let s = scales.loadUnaligned(fromByteOffset: 4 * ((r / block.rows) * blocks[1] + c / block.columns), as: Float.self)
                    target[r * columns + c] *= s
                }
            }
        }
        return NamedTensor(name: weight.name, dtype: .f32, shape: weight.shape, rope: storage.rope)
    }
}

/// An FP8 matrix and its block scales as a checkpoint stores them: what a dequantized weight was
/// derived from (`DerivedStorage.origin`), which the kernels read in place instead.
public struct BlockScaledMatrix: Sendable {
    public let name: String
    public let dtype: DType
    public let rows: Int
    public let columns: Int
    public let values: ByteRope
    /// F32 [ceil(rows / blockRows), ceil(columns / blockColumns)].
    public let scales: ByteRope
    public let blockRows: Int
    public let blockColumns: Int
}
