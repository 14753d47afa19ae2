import MoECkptFormats
import MoECkptTensors

/// The columns of a stored tensor [..., rows, parts * columns] dealt round-robin to `parts`
/// canonical tensors (gpt-oss's `gate_up_proj`: gate the even columns, up the odd), each
/// [..., rows, columns], or its transpose [..., columns, rows] when `transposed` (a stored `x @ W`
/// matrix as moeckpt's [out, in]). Elements move one by one, so both directions are computed
/// (`DerivedStorage`) when first read, not re-arranged as byte ranges.
struct ColumnDeal {
    let leading: [Int]
    let rows, columns, parts: Int
    let transposed: Bool

    /// From a canonical part's shape; nil for fewer than two dimensions.
    init?(partShape: [Int], parts: Int, transposed: Bool) {
        guard partShape.count >= 2 else { return nil }
        let (a, b) = (partShape[partShape.count - 2], partShape[partShape.count - 1])
        leading = Array(partShape.dropLast(2))
        (rows, columns) = transposed ? (b, a) : (a, b)
        self.parts = parts
        self.transposed = transposed
    }

    var storedShape: [Int] { leading + [rows, parts * columns] }
    var partShape: [Int] { leading + (transposed ? [columns, rows] : [rows, columns]) }
    private var matrices: Int { leading.reduce(1, *) }
    private var elements: Int { matrices * rows * columns }

    /// Part `part` of the stored tensor (nil for a dtype without whole-byte elements).
    func part(_ part: Int, of stored: ByteRope, dtype: DType, name: String) -> ByteRope? {
        guard let width = dtype.byteWidth else { return nil }
        let deal = self
        return DerivedStorage(name: name, byteCount: elements * width, sources: [stored]) { sources, out in
            deal.move(part: part, width: width, from: sources[0], to: out, toPart: true)
        }
        .rope
    }

    /// The stored tensor from its parts (nil for a dtype without whole-byte elements).
    func joined(_ parts: [ByteRope], dtype: DType, name: String) -> ByteRope? {
        guard let width = dtype.byteWidth else { return nil }
        let deal = self
        return DerivedStorage(name: name, byteCount: elements * width * parts.count, sources: parts) { sources, out in
            for (p, source) in sources.enumerated() { deal.move(part: p, width: width, from: source, to: out, toPart: false) }
        }
        .rope
    }

    /// Moves every element of one part from the stored tensor into the part (`toPart`), or back.
    private func move(
        part p: Int, width: Int, from source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawBufferPointer, toPart: Bool
    ) {
        switch width {
        case 1: move(UInt8.self, p, source, destination, toPart)
        case 2: move(UInt16.self, p, source, destination, toPart)
        case 4: move(UInt32.self, p, source, destination, toPart)
        default: move(UInt64.self, p, source, destination, toPart)
        }
    }

    private func move<Element: FixedWidthInteger>(
        _: Element.Type, _ p: Int, _ source: UnsafeRawBufferPointer, _ destination: UnsafeMutableRawBufferPointer, _ toPart: Bool
    ) {
        let width = MemoryLayout<Element>.size
        for m in 0..<matrices {
            for r in 0..<rows {
                for c in 0..<columns {
                    let storedAt = ((m * rows + r) * parts * columns + c * parts + p) * width
                    let partAt = (transposed ? (m * columns + c) * rows + r : (m * rows + r) * columns + c) * width
                    let (from, to) = toPart ? (storedAt, partAt) : (partAt, storedAt)
                    destination.storeBytes(
                        of: source.loadUnaligned(fromByteOffset: from, as: Element.self), toByteOffset: to, as: Element.self)
                }
            }
        }
    }
}
