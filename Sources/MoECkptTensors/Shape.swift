#if canImport(Glibc)
import Glibc
#endif

/// Why a shape cannot describe a tensor of a given dtype.
public enum ShapeError: Error, Equatable, Sendable {
    case negativeDimension(Int)
    case overflow
    case subByteNotWholeBytes(elements: Int, bits: Int)
}

/// Checked size arithmetic for tensor shapes: every product is overflow-checked because shapes come
/// from untrusted headers.
public enum Shape {
    /// The number of elements (1 for a scalar, 0 if any dimension is 0).
    public static func elementCount(_ shape: [Int]) throws(ShapeError) -> Int {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { throw .negativeDimension(dim) }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw .overflow }
            count = product
        }
        return count
    }

    /// Bytes a tensor of this shape and dtype occupies. As in the reference, sub-byte tensors must
    /// fill whole bytes.
    public static func byteCount(_ shape: [Int], dtype: DType) throws(ShapeError) -> Int {
        let elements = try elementCount(shape)
        let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bits)
        guard !overflow else { throw .overflow }
        guard bits % 8 == 0 else { throw .subByteNotWholeBytes(elements: elements, bits: dtype.bits) }
        return bits / 8
    }
}

/// Integer arithmetic that turns nil on overflow instead of trapping (sizes from untrusted files).
public struct Checked: Sendable {
    public let value: Int?
    public init(_ value: Int?) { self.value = value }

    public static func * (a: Checked, b: Int) -> Checked {
        guard let x = a.value else { return a }
        let (product, overflow) = x.multipliedReportingOverflow(by: b)
        return Checked(overflow ? nil : product)
    }

    public static func + (a: Checked, b: Checked) -> Checked {
        guard let x = a.value, let y = b.value else { return Checked(nil) }
        let (sum, overflow) = x.addingReportingOverflow(y)
        return Checked(overflow ? nil : sum)
    }

    public static func + (a: Checked, b: Int) -> Checked { a + Checked(b) }
}
