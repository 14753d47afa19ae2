import MoECkptKernels
import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// Scaled dot-product attention of one head over one sequence. Sequences of up to
/// `wholeSequenceTokens` are computed in one piece, exactly as before; longer ones in blocks of
/// `queryBlockRows` queries, each against only the keys its rows can see, so that memory grows
/// with the sequence length rather than its square (a 100,000-token input would otherwise need a
/// 40 GB score matrix per head; a thread now holds 64 x tokens scores). A block's masked entries
/// are exactly 0 after the softmax, so blocked results differ from whole-sequence ones only by
/// the rounding of shorter sums (tested within 1e-6).
package enum HeadAttention {
    static let wholeSequenceTokens = 512
    static let queryBlockRows = 64

    /// Which keys each query sees: all of them, or causally (optionally within a sliding window).
    package enum Mask {
        case none
        case causal(window: Int?)

        /// The keys query `i` of `tokens` sees, a contiguous range.
        func keys(_ i: Int, tokens: Int) -> Range<Int> {
            switch self {
            case .none: 0..<tokens
            case .causal(let window): (window.map { max(0, i - $0 + 1) } ?? 0)..<(i + 1)
            }
        }
    }

    /// `queries`, `keys` and `values` are [tokens, d]; the result is [tokens, d]. A `sink`
    /// (gpt-oss) is one more logit in each softmax's denominator, with no value. `blockRows`
    /// overrides the block size (tests).
    package static func attend(
        queries: [Float], keys: [Float], values: [Float], tokens: Int, d: Int, scaling: Float,
        mask: Mask, sink: Float? = nil, blockRows: Int? = nil
    ) -> [Float] {
        let rowsPerBlock = blockRows ?? (tokens <= wholeSequenceTokens ? max(tokens, 1) : queryBlockRows)
        var result = [Float](repeating: 0, count: tokens * d)
        var first = 0
        while first < tokens {
            let rows = first..<min(tokens, first + rowsPerBlock)
            // Whole sequences keep the full square (the computation as it always was).
            let span =
                rowsPerBlock >= tokens
                ? 0..<tokens
                : mask.keys(rows.lowerBound, tokens: tokens).lowerBound..<mask.keys(rows.upperBound - 1, tokens: tokens).upperBound
            let blockQueries = Array(queries[(rows.lowerBound * d)..<(rows.upperBound * d)])
            let blockKeys = Array(keys[(span.lowerBound * d)..<(span.upperBound * d)])
            var scores = LinearLayer(weight: blockKeys, inputs: d, outputs: span.count).apply(blockQueries, rows: rows.count, threads: 1)
            for r in 0..<rows.count {
                let visible = mask.keys(rows.lowerBound + r, tokens: tokens)
                let base = r * span.count
                for c in 0..<span.count {
                    scores[base + c] = visible.contains(span.lowerBound + c) ? scores[base + c] * scaling : -.infinity
                }
            }
            let probabilities =
                sink.map { withSink(scores, rows: rows.count, columns: span.count, sink: $0) }
                ?? softmaxRows(scores, rows: rows.count, columns: span.count)
            let blockValues = Array(values[(span.lowerBound * d)..<(span.upperBound * d)])
            let output = LinearLayer(weight: transpose(blockValues, rows: span.count, columns: d), inputs: span.count, outputs: d)
                .apply(probabilities, rows: rows.count, threads: 1)
            for k in 0..<output.count { result[rows.lowerBound * d + k] = output[k] }
            first = rows.upperBound
        }
        return result
    }

    /// Softmax of each row with `sink` joining the denominator: m = max(row, sink),
    /// p_j = e^(z_j - m) / (sum_j e^(z_j - m) + e^(sink - m)), as transformers' gpt-oss computes it.
    static func withSink(_ scores: [Float], rows: Int, columns: Int, sink: Float) -> [Float] {
        var out = scores
        for r in 0..<rows {
            let row = r * columns
            var m = sink
            for c in 0..<columns { m = max(m, scores[row + c]) }
            var sum: Float = 0
            for c in 0..<columns {
                out[row + c] = expf(scores[row + c] - m)
                sum += out[row + c]
            }
            sum += expf(sink - m)
            for c in 0..<columns { out[row + c] /= sum }
        }
        return out
    }

    /// Bytes one call holds at most besides its inputs and result: a block's scores and
    /// probabilities, and its copies of keys and values.
    /// Int.max when the count overflows (a token count from a hostile file).
    package static func scratchBytes(tokens: Int, d: Int) -> Int {
        let rows = tokens <= wholeSequenceTokens ? tokens : queryBlockRows
        return ((Checked(rows) * tokens * 2 + Checked(tokens) * d * 3 + Checked(rows) * d * 2) * 4).value ?? Int.max
    }
}

/// Columns `from..<from+count` of rows `rows` of a [*, width] matrix, contiguous.
package func columns(_ x: [Float], rows: Range<Int>, width: Int, from: Int, count: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows.count * count)
    for (i, r) in rows.enumerated() {
        for c in 0..<count { out[i * count + c] = x[r * width + from + c] }
    }
    return out
}

func transpose(_ x: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * columns)
    for r in 0..<rows {
        for c in 0..<columns { out[c * rows + r] = x[r * columns + c] }
    }
    return out
}
