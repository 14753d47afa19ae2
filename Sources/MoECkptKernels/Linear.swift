/// How the products of linear layers are computed.
public enum Arithmetic: String, Sendable, CaseIterable {
    /// Every weight widened exactly to fp32 and multiplied by the fp32 activations, one defined
    /// sequence of roundings: what `verify` checks against transformers.
    case exact
    /// llama.cpp's: on ggml's Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights, activations are quantized
    /// to 8 bits per block as ggml quantizes them, and blocks are integer products
    /// (matrix_quantized.h); on BF16 weights, activations are rounded to BF16 and multiplied in
    /// pairs as AVX512-BF16's `vdpbf16ps` does (matrix_bf16_pairs.h); at every batch size. The
    /// other weights stay exact. Gives llama.cpp's logits within float rounding
    /// (scripts/make_llamacpp_logits.py); faster for a few tokens, and for a prefill where the
    /// CPU has AVX512-VNNI (the block formats) or AVX512-BF16 (docs/PERFORMANCE.md).
    case ggml
}

/// y = x · wᵀ (+ bias): the linear layer of PyTorch, with weights stored [out, in] as they are in
/// every checkpoint, used in place in their dtype.
///
/// A few tokens are dot products on the rows as they are; more are moved into the layout of the
/// matrix kernels (`TokenPanels`) and back. Threads split the output features; every element is
/// computed by the same operations whatever the thread count or kernel variant, so results are
/// bit-identical for 1 or N threads.
public enum Linear {
    /// The arithmetic of the products run in this task (`Linear.$arithmetic.withValue(.ggml) { ... }`).
    @TaskLocal public static var arithmetic: Arithmetic = .exact

    /// Up to this many tokens, products run as dot products on rows (`multiplyRows`).
    public static var maxDotTokens: Int { KernelVariant.selected.maxDotTokens }

    /// Whether products of `tokens` rows on weights of `type` run as dot products on rows
    /// (`multiplyRows`): a few tokens, or any number in ggml's arithmetic on a type it quantizes
    /// activations for (as llama.cpp does at every batch size).
    public static func runsOnRows(_ type: MatrixWeightType, inputs: Int, tokens: Int, variant: KernelVariant = .selected) -> Bool {
        tokens <= variant.maxDotTokens || (arithmetic == .ggml && type.quantizedActivationBytes(inputs) != nil)
    }

    /// - Parameters: x [rows, inputs], weight [outputs, inputs], bias [outputs] or nil, y [rows, outputs].
    public static func forward(
        x: UnsafePointer<Float>, rows: Int, inputs: Int,
        weight: UnsafePointer<Float>, outputs: Int, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>, threads: Int = 1
    ) {
        forward(
            .f32, x: x, rows: rows, inputs: inputs, weight: UnsafeRawPointer(weight), outputs: outputs,
            bias: bias, into: y, threads: threads)
    }

    public static func forward(
        _ type: MatrixWeightType, x: UnsafePointer<Float>, rows: Int, inputs: Int,
        weight: UnsafeRawPointer, scales: BlockScales? = nil, outputs: Int, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>, threads: Int = 1,
        variant: KernelVariant = .selected
    ) {
        guard rows > 0 else { return }
        if runsOnRows(type, inputs: inputs, tokens: rows, variant: variant) {
            multiplyRows(
                type, weight: weight, scales: scales, outputs: outputs, inputs: inputs, x: x, tokens: rows, y: y,
                threads: threads, variant: variant)
            if let bias {
                for t in 0..<rows {
                    for n in 0..<outputs { y[t * outputs + n] += bias[n] }
                }
            }
            return
        }
        let layout = TokenPanels(variant: variant)
        let tokens = layout.padded(rows)
        let xPanels = UnsafeMutablePointer<Float>.allocate(capacity: inputs * tokens)
        let yPanels = UnsafeMutablePointer<Float>.allocate(capacity: outputs * tokens)
        defer { xPanels.deallocate(); yPanels.deallocate() }
        layout.fromRows(x, rows: rows, features: inputs, into: xPanels, threads: threads)
        multiply(
            type, weight: weight, scales: scales, outputs: outputs, inputs: inputs, x: xPanels, tokens: rows, y: yPanels,
            threads: threads, variant: variant)
        layout.toRows(yPanels, rows: rows, features: outputs, bias: bias, into: y, threads: threads)
    }

    /// y [outputs, tokens] = weight · x [inputs, tokens], both in `TokenPanels` of `variant` (padded
    /// to whole panels; the padding columns of y are unspecified), threads splitting the outputs.
    public static func multiply(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, scales: BlockScales? = nil, outputs: Int, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, threads: Int,
        variant: KernelVariant = .selected
    ) {
        let (ws, xs, ys) = (SendableRawPointer(weight), SendableConstPointer(x), SendablePointer(y))
        let padded = TokenPanels(variant: variant).padded(tokens)
        Parallel.ranges(outputs, threads: threads, alignment: variant.rowTile) { range in
            variant.multiply(
                type, weight: ws.base, scales: scales, rows: range, inputs: inputs, x: xs.base, tokens: padded,
                validTokens: tokens, y: ys.base, outputs: outputs)
        }
    }

    /// y [tokens, outputs] = x [tokens, inputs] · weightᵀ, row-major, threads splitting the
    /// outputs: for at most `variant.maxDotTokens` tokens, or any number where `runsOnRows`.
    public static func multiplyRows(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, scales: BlockScales? = nil, outputs: Int, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, threads: Int,
        variant: KernelVariant = .selected
    ) {
        if arithmetic == .ggml, let bytes = type.quantizedActivationBytes(inputs) {
            multiplyRowsQuantized(
                type, weight: weight, outputs: outputs, inputs: inputs, x: x, rowBytes: bytes, tokens: tokens, y: y,
                threads: threads, variant: variant)
            return
        }
        let (ws, xs, ys) = (SendableRawPointer(weight), SendableConstPointer(x), SendablePointer(y))
        Parallel.ranges(outputs, threads: threads, alignment: 16) { range in
            variant.multiplyRows(
                type, weight: ws.base, scales: scales, rows: range, inputs: inputs, x: xs.base, tokens: tokens,
                y: ys.base, outputs: outputs)
        }
    }

    /// `multiplyRows` in `Arithmetic.ggml`: x quantized once, then integer dot products.
    private static func multiplyRowsQuantized(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, outputs: Int, inputs: Int, x: UnsafePointer<Float>,
        rowBytes: Int, tokens: Int, y: UnsafeMutablePointer<Float>, threads: Int, variant: KernelVariant
    ) {
        let quantized = UnsafeMutableRawPointer.allocate(byteCount: rowBytes * tokens, alignment: 64)
        defer { quantized.deallocate() }
        variant.quantizeActivations(for: type, x: x, tokens: tokens, inputs: inputs, into: quantized)
        let (ws, qs, ys) = (SendableRawPointer(weight), SendableRawPointer(UnsafeRawPointer(quantized)), SendablePointer(y))
        Parallel.ranges(outputs, threads: threads, alignment: 16) { range in
            variant.multiplyRowsQuantized(
                type, weight: ws.base, rows: range, inputs: inputs, x: qs.base, tokens: tokens, y: ys.base, outputs: outputs)
        }
    }
}
