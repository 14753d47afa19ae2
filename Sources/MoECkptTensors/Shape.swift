#if canImport(Glibc)
import Glibc
#endif

/// How much memory this machine has: allocations sized by untrusted input are checked against it
/// before they are made (an allocation that fails would stop the process).
public enum MemoryBudget {
    public static var physicalBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    /// Whether `bytes` could be allocated at all.
    public static func fits(_ bytes: Int) -> Bool { bytes >= 0 && bytes <= physicalBytes }
}

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
