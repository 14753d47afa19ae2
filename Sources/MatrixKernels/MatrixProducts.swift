// This folder is compiled twice, as MoECkptMatrixAVX2 (-target-cpu haswell) and as
// MoECkptMatrixAVX512 (-target-cpu znver4, WIDE_VECTORS): Swift has no per-function target
// attributes, so the instruction set is chosen per module and MoECkptKernels picks one at run time.

/// The entry points of this build of the matrix kernels. Both builds compute every element with
/// the same sequence of operations, so their results are bit-identical.
public enum MatrixProducts {
    /// Weight rows per register tile of `multiply`; split rows between threads in multiples of it.
    public static var rowTile: Int { Gemm.rowTile }
    /// Tokens per panel of the activations `multiply` reads and writes.
    public static var tokenPanel: Int { Gemm.tokenPanel }

    /// y[n, t] = Σ_k weight[n, k] x[k, t] for n in `rows`, all `tokens` (whole panels); x is
    /// [inputs, tokens] and y [outputs, tokens] in panels of `tokenPanel`; weights in `format`
    /// (MXFP4: `inputs` a multiple of 32). Only the first `validTokens` tokens are guaranteed to
    /// be computed.
    public static func multiply(
        _ format: WeightFormat, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, validTokens: Int, y: UnsafeMutablePointer<Float>,
        outputs: Int
    ) {
        func run<E: WeightElement>(_ element: E.Type) {
            Gemm.multiply(
                element, weight: weight, rows: rows, inputs: inputs, x: x, tokens: tokens, validTokens: validTokens, y: y,
                outputs: outputs)
        }
        switch format {
        case .f32: run(F32Element.self)
        case .bf16: run(BF16Element.self)
        case .mxfp4: run(MXFP4Element.self)
        case .q8_0: run(Q8_0Element.self)
        case .q4_0: run(Q4_0Element.self)
        case .q4_K: run(Q4_KElement.self)
        case .q6_K: run(Q6_KElement.self)
        }
    }

    /// Few tokens (at most `maxDotTokens`) go through dot products instead.
    public static var maxDotTokens: Int { Dots.maxTokens }

    /// y[t, n] = Σ_k weight[n, k] x[t, k] for n in `rows`, t < `tokens`, row-major: x [tokens,
    /// inputs], y [tokens, outputs].
    public static func multiplyRows(
        _ format: WeightFormat, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        func run<E: WeightElement>(_ element: E.Type) {
            Dots.multiply(element, weight: weight, rows: rows, inputs: inputs, x: x, tokens: tokens, y: y, outputs: outputs)
        }
        switch format {
        case .f32: run(F32Element.self)
        case .bf16: run(BF16Element.self)
        case .mxfp4: run(MXFP4Element.self)
        case .q8_0: run(Q8_0Element.self)
        case .q4_0: run(Q4_0Element.self)
        case .q4_K: run(Q4_KElement.self)
        case .q6_K: run(Q6_KElement.self)
        }
    }
}
