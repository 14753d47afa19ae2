/// The layout the matrix kernels read and write activations in: a [features, tokens] matrix stored
/// as panels of `width` tokens; within a panel each feature's `width` values are contiguous.
/// Element (f, t) of a matrix with F features is at ((t / width) * F + f) * width + t % width.
/// Token counts are padded to whole panels with zeros.
public struct TokenPanels: Sendable {
    public let width: Int

    public init(build: MatrixKernelBuild = .selected) { width = build.tokenPanel }

    public init(width: Int) { self.width = width }

    /// `tokens` rounded up to whole panels.
    public func padded(_ tokens: Int) -> Int { (tokens + width - 1) / width * width }

    /// Panels of x[rows[j], c]: token j of the result is row rows[j] of x [*, features]; tokens
    /// rows.count..<padded(rows.count) are zero.
    public func gather(_ x: UnsafePointer<Float>, features: Int, rows: UnsafeBufferPointer<Int>,
                       into panels: UnsafeMutablePointer<Float>) {
        var j0 = 0
        while j0 < rows.count {
            let count = min(width, rows.count - j0)
            let panel = panels + j0 * features
            for c in 0..<features {
                let column = panel + c * width
                for j in 0..<count { column[j] = x[rows[j0 + j] * features + c] }
                for j in count..<width { column[j] = 0 }
            }
            j0 += width
        }
    }

    /// Panels of the rows 0..<rows of x [rows, features].
    public func fromRows(_ x: UnsafePointer<Float>, rows: Int, features: Int, into panels: UnsafeMutablePointer<Float>) {
        let identity = Array(0..<rows)
        identity.withUnsafeBufferPointer { gather(x, features: features, rows: $0, into: panels) }
    }

    /// y[t, f] = panels(f, t) (+ bias[f]) for t < rows: back to [rows, features].
    public func toRows(_ panels: UnsafePointer<Float>, rows: Int, features: Int, bias: UnsafePointer<Float>?,
                       into y: UnsafeMutablePointer<Float>) {
        for t in 0..<rows {
            let source = panels + (t / width) * features * width + t % width
            let row = y + t * features
            if let bias {
                for f in 0..<features { row[f] = source[f * width] + bias[f] }
            } else {
                for f in 0..<features { row[f] = source[f * width] }
            }
        }
    }

    /// y[rows[j], f] += weights[j] * panels(f, j): an expert's outputs, weighted by the router,
    /// added to the tokens they came from.
    public func scatterAdd(_ panels: UnsafePointer<Float>, features: Int, rows: UnsafeBufferPointer<Int>,
                           weights: UnsafeBufferPointer<Float>, into y: UnsafeMutablePointer<Float>) {
        for (j, row) in rows.enumerated() {
            let source = panels + (j / width) * features * width + j % width
            let target = y + row * features
            let weight = weights[j]
            for f in 0..<features { target[f] += weight * source[f * width] }
        }
    }
}
