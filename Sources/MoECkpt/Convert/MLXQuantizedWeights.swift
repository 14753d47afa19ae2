import MoECkptFormats
import MoECkptModels
import MoECkptTensors

/// `convert --names mlx --quantize`: each weight mlx-lm's `quantize_model` would quantize becomes
/// `P.weight` (U32 codes), `P.scales` and `P.biases` (affine: in the weights' dtype, as
/// `mx.quantize` returns them; the microscaling modes: U8 scales, no biases), computed from the
/// weights when written; the other tensors are left as they are.
enum MLXQuantizedWeights {
    /// `modules`: the parameters of each module quantized (`MLXQuantizationRules.plan`); `dtype`:
    /// the dtype the weights are cast to first (`--dtype`), as mlx-lm casts before quantizing.
    static func quantized(_ tensors: [NamedTensor], modules: [String: MLXQuantization.Parameters], dtype: DType?) -> [NamedTensor] {
        tensors.flatMap { tensor -> [NamedTensor] in
            guard tensor.name.hasSuffix(".weight"), let parameters = modules[String(tensor.name.dropLast(".weight".count))] else {
                return [tensor]
            }
            let module = String(tensor.name.dropLast(".weight".count))
            let stored = dtype ?? tensor.dtype
            let (bits, group) = (parameters.bits, parameters.groupSize)
            let columns = tensor.shape.last!
            let rows = tensor.shape.dropLast().reduce(1, *)
            let groupShape = Array(tensor.shape.dropLast()) + [columns / group]
            let (source, sourceType) = (tensor.rope, tensor.dtype)
            func part(_ name: String, _ partType: DType, _ shape: [Int], _ bytes: Int, _ which: Part) -> NamedTensor {
                let storage = DerivedStorage(name: name, byteCount: bytes, sources: [source]) { sources, out in
                    quantize(
                        sources[0], from: sourceType, through: stored, rows: rows, columns: columns, parameters: parameters,
                        keeping: which, into: out)
                }
                return NamedTensor(name: name, dtype: partType, shape: shape, rope: storage.rope)
            }
            let codes = part(tensor.name, .u32, Array(tensor.shape.dropLast()) + [columns * bits / 32], rows * columns * bits / 8, .codes)
            guard parameters.mode == .affine else {
                // Microscaling modes: one U8 scale a group, no biases.
                return [codes, part(module + ".scales", .u8, groupShape, rows * (columns / group), .scales)]
            }
            let groupBytes = rows * (columns / group) * stored.byteWidth!
            return [
                codes, part(module + ".scales", stored, groupShape, groupBytes, .scales),
                part(module + ".biases", stored, groupShape, groupBytes, .biases),
            ]
        }
    }

    enum Part { case codes, scales, biases }

    /// Row by row: the row widened to F32 (rounded through `stored` first when the weights are
    /// cast), quantized, and the wanted part written (scales and biases rounded to `stored`).
    private static func quantize(
        _ source: UnsafeRawBufferPointer, from sourceType: DType, through stored: DType, rows: Int, columns: Int,
        parameters: MLXQuantization.Parameters, keeping part: Part, into out: UnsafeMutableRawBufferPointer
    ) {
        let (bits, group) = (parameters.bits, parameters.groupSize)
        let microscaling: MLXMicroscaled.Mode? =
            switch parameters.mode {
            case .affine: nil
            case .mxfp4: .mxfp4
            case .mxfp8: .mxfp8
            case .nvfp4: .nvfp4
            }
        let sourceWidth = sourceType.byteWidth!
        let groups = columns / group
        var row = [Float](repeating: 0, count: columns)
        var narrow = [UInt8](repeating: 0, count: columns * stored.byteWidth!)
        var codes = [UInt32](repeating: 0, count: columns * bits / 32)
        var scales = [Float](repeating: 0, count: groups)
        var biases = [Float](repeating: 0, count: groups)
        for r in 0..<rows {
            let input = source.baseAddress! + r * columns * sourceWidth
            row.withUnsafeMutableBytes { wide in
                if stored == sourceType || stored == .f32 {
                    try? Cast.cast(input, from: sourceType, into: wide.baseAddress!, as: .f32, count: columns)
                } else {
                    narrow.withUnsafeMutableBytes {
                        try? Cast.cast(input, from: sourceType, into: $0.baseAddress!, as: stored, count: columns)
                    }
                    narrow.withUnsafeBytes {
                        try? Cast.cast($0.baseAddress!, from: stored, into: wide.baseAddress!, as: .f32, count: columns)
                    }
                }
            }
            if let microscaling {
                var bytes = [UInt8](repeating: 0, count: groups)
                row.withUnsafeBufferPointer {
                    MLXMicroscaled.quantize(
                        $0.baseAddress!, rows: 1, columns: columns, mode: microscaling, dtype: stored, codes: &codes, scales: &bytes)
                }
                switch part {
                case .codes:
                    codes.withUnsafeBytes {
                        (out.baseAddress! + r * codes.count * 4).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                    }
                case .scales, .biases:
                    bytes.withUnsafeBytes { (out.baseAddress! + r * groups).copyMemory(from: $0.baseAddress!, byteCount: groups) }
                }
                continue
            }
            row.withUnsafeBufferPointer { values in
                MLXAffine.quantize(
                    values.baseAddress!, rows: 1, columns: columns, bits: bits, groupSize: group, codes: &codes, scales: &scales,
                    biases: &biases)
            }
            switch part {
            case .codes:
                codes.withUnsafeBytes { (out.baseAddress! + r * codes.count * 4).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            case .scales, .biases:
                let values = part == .scales ? scales : biases
                let width = stored.byteWidth!
                values.withUnsafeBytes {
                    try? Cast.cast($0.baseAddress!, from: .f32, into: out.baseAddress! + r * groups * width, as: stored, count: groups)
                }
            }
        }
    }
}
