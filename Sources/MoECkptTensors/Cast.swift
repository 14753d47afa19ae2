/// Why a tensor cannot be cast.
public enum CastError: Error, Equatable, Sendable {
    case unsupported(from: DType, to: DType)
}

/// Element-wise casts between float dtypes, chunk by chunk over raw bytes. Sources may be unaligned
/// (safetensors offsets are arbitrary), so elements are loaded unaligned.
public enum Cast {
    /// Float dtypes a cast can produce.
    public static let targets: Set<DType> = [.f32, .f16, .bf16]

    /// Whether `from` can be cast to `to` element by element (sub-byte floats are packed with
    /// block scales in practice, so they are not cast).
    public static func canCast(from: DType, to: DType) -> Bool {
        guard targets.contains(to), from.isFloatingPoint, from.byteWidth != nil else { return false }
        return true
    }

    /// Casts `count` elements from `source` into `destination`, which must hold
    /// `count * to.byteWidth` bytes.
    public static func cast(
        _ source: UnsafeRawPointer, from: DType,
        into destination: UnsafeMutableRawPointer, as to: DType,
        count: Int
    ) throws(CastError) {
        guard canCast(from: from, to: to) else { throw .unsupported(from: from, to: to) }
        if from == to {
            destination.copyMemory(from: source, byteCount: count * from.byteWidth!)
            return
        }
        switch to {
        case .f32:
            widenToF32(source, from: from, into: destination.assumingMemoryBound(to: UInt32.self), count: count)
        case .f16:
            narrow(
                source, from: from, into: destination.assumingMemoryBound(to: UInt16.self), count: count,
                toBF16: false)
        default:
            narrow(
                source, from: from, into: destination.assumingMemoryBound(to: UInt16.self), count: count,
                toBF16: true)
        }
    }

    /// Any byte-wide float dtype to F32 bits.
    static func widenToF32(
        _ source: UnsafeRawPointer, from: DType,
        into out: UnsafeMutablePointer<UInt32>, count: Int
    ) {
        switch from {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: 4 &* count)
        case .bf16:
            for i in 0..<count {
                out[i] = FloatBits.bf16ToF32(source.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
            }
        case .f16:
            for i in 0..<count {
                out[i] = FloatBits.f16ToF32(source.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self))
            }
        case .f64:
            // Rounds to nearest even, as the hardware conversion does.
            for i in 0..<count {
                out[i] = Float(source.loadUnaligned(fromByteOffset: 8 &* i, as: Double.self)).bitPattern
            }
        default:
            let table = Minifloat.of(from)!.table
            table.withUnsafeBufferPointer { lookup in
                let bytes = source.assumingMemoryBound(to: UInt8.self)
                for i in 0..<count { out[i] = lookup[Int(bytes[i])] }
            }
        }
    }

    /// Any byte-wide float dtype to a 16-bit float through F32, in chunks that stay in L1.
    /// F16 and BF16 sources widen exactly, so there is one rounding; F64 rounds twice, as PyTorch's
    /// `Tensor.to` does.
    static func narrow(
        _ source: UnsafeRawPointer, from: DType, into out: UnsafeMutablePointer<UInt16>,
        count: Int, toBF16: Bool
    ) {
        let chunk = 4096
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: chunk) { wide in
            var start = 0
            while start < count {
                let n = min(chunk, count - start)
                widenToF32(source + start * from.byteWidth!, from: from, into: wide.baseAddress!, count: n)
                let dst = out + start
                if toBF16 {
                    // torch.Tensor.to(bfloat16) writes one NaN whatever the payload: all ones from
                    // F32 (its vectorised kernel), 0x7FC0 from any other dtype (c10's BFloat16).
                    let nan: UInt16 = from == .f32 ? 0xFFFF : 0x7FC0
                    for i in 0..<n { dst[i] = wide[i] & 0x7FFF_FFFF > 0x7F80_0000 ? nan : FloatBits.f32ToBF16(wide[i]) }
                } else {
                    for i in 0..<n { dst[i] = FloatBits.f32ToF16(wide[i]) }
                }
                start += n
            }
        }
    }
}
