/// The layout the matrix kernels read and write activations in: a [features, tokens] matrix stored
/// as panels of `width` tokens; within a panel each feature's `width` values are contiguous.
/// Element (f, t) of a matrix with F features is at ((t / width) * F + f) * width + t % width.
/// Token counts are padded to whole panels with zeros. Panels one token wide are plain rows,
/// [tokens, features].
public struct TokenPanels: Sendable {
    public let width: Int

    public init(variant: KernelVariant = .selected) { width = variant.tokenPanel }

    public init(width: Int) { self.width = width }

    /// `tokens` rounded up to whole panels.
    public func padded(_ tokens: Int) -> Int { (tokens + width - 1) / width * width }

    /// Panels of x[rows[j], c]: token j of the result is row rows[j] of x [*, features]; tokens
    /// rows.count..<padded(rows.count) are zero. Threads split the panels.
    public func gather(
        _ x: UnsafePointer<Float>, features: Int, rows: UnsafeBufferPointer<Int>,
        into panels: UnsafeMutablePointer<Float>, threads: Int = 1
    ) {
        guard let rowIndices = rows.baseAddress else { return }
        let width = self.width
        let (source, target, selected) = (SendableConstPointer(x), SendablePointer(panels), SendableConstPointer(rowIndices))
        let count = rows.count
        Parallel.ranges(padded(count) / width, threads: threads) { panelRange in
            for panel in panelRange {
                let j0 = panel * width
                let tokens = min(width, count - j0)
                let block = target.base + j0 * features
                for c in 0..<features {
                    let column = block + c * width
                    for j in 0..<tokens { column[j] = source.base[selected.base[j0 + j] * features + c] }
                    for j in tokens..<width { column[j] = 0 }
                }
            }
        }
    }

    /// Panels of the rows 0..<rows of x [rows, features].
    public func fromRows(
        _ x: UnsafePointer<Float>, rows: Int, features: Int, into panels: UnsafeMutablePointer<Float>,
        threads: Int = 1
    ) {
        let identity = Array(0..<rows)
        identity.withUnsafeBufferPointer { gather(x, features: features, rows: $0, into: panels, threads: threads) }
    }

    /// y[t, f] = panels(f, t) (+ bias[f]) for t < rows: back to [rows, features], in blocks of 16
    /// features (one cache line of each output row), threads splitting the panels.
    public func toRows(
        _ panels: UnsafePointer<Float>, rows: Int, features: Int, bias: UnsafePointer<Float>?,
        into y: UnsafeMutablePointer<Float>, threads: Int = 1
    ) {
        let width = self.width
        let (source, target, b) = (SendableConstPointer(panels), SendablePointer(y), bias.map(SendableConstPointer.init))
        Parallel.ranges(padded(rows) / width, threads: threads) { panelRange in
            for panel in panelRange {
                let block = source.base + panel * features * width
                let tokens = min(width, rows - panel * width)
                var f0 = 0
                while f0 < features {
                    let f1 = min(features, f0 + 16)
                    for t in 0..<tokens {
                        let row = target.base + (panel * width + t) * features
                        if let bias = b?.base {
                            for f in f0..<f1 { row[f] = block[f * width + t] + bias[f] }
                        } else {
                            for f in f0..<f1 { row[f] = block[f * width + t] }
                        }
                    }
                    f0 = f1
                }
            }
        }
    }

    /// y[rows[j], f] += weights[j] * panels(f, j): an expert's outputs, weighted by the router,
    /// added to the tokens they came from.
    public func scatterAdd(
        _ panels: UnsafePointer<Float>, features: Int, rows: UnsafeBufferPointer<Int>,
        weights: UnsafeBufferPointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        for (j, row) in rows.enumerated() {
            let source = panels + (j / width) * features * width + j % width
            let target = y + row * features
            let weight = weights[j]
            for f in 0..<features { target[f] += weight * source[f * width] }
        }
    }
}
