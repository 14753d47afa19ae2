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

    /// The stored tensors with each scaled weight replaced by its F32 values (in memory: a copy,
    /// where the other tensors stay in place) and the scales removed; the problems of any that
    /// cannot be dequantized.
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
        let (out, inputs) = (weight.shape[0], weight.shape[1])
        let blocks = [(out + rows - 1) / rows, (inputs + columns - 1) / columns]
        guard scale.dtype == .f32, scale.shape == blocks else {
            throw BlockScaleError(description: "\(scale.name) is \(scale.dtype.name) \(scale.shape), expected F32 \(blocks)")
        }
        guard MemoryBudget.fits(out * inputs * 4 * 2) else {
            throw BlockScaleError(description: "\(weight.name): dequantizing it would need more memory than this process may use")
        }
        do {
            try weight.rope.load()
            try scale.rope.load()
        } catch {
            throw BlockScaleError(description: error.description)
        }
        let raw = weight.rope.copyBytes()
        let scales = scale.rope.copyBytes().withUnsafeBytes { p in
            (0..<(blocks[0] * blocks[1])).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
        var values = [Float](repeating: 0, count: out * inputs)
        raw.withUnsafeBytes { source in
            values.withUnsafeMutableBytes { target in
                try? Cast.cast(source.baseAddress!, from: weight.dtype, into: target.baseAddress!, as: .f32, count: raw.count / width)
            }
        }
        for r in 0..<out {
            for c in 0..<inputs { values[r * inputs + c] *= scales[(r / rows) * blocks[1] + c / columns] }
        }
        let storage = values.withUnsafeBytes { FileMapping(copying: $0, path: weight.name) }
        return NamedTensor(
            name: weight.name, dtype: .f32, shape: weight.shape,
            rope: ByteRope([BytePiece(storage: storage, offset: 0, count: values.count * 4)]))
    }
}
