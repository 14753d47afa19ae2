import CCRC32C

/// CRC-32C, the checksum of `.moeckpt` files (see docs/FORMAT.md for why).
public enum CRC32C {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return moeckpt_crc32c(crc, base, bytes.count)
    }

    /// Bit by bit, for tests.
    public static func reference(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return moeckpt_crc32c_reference(crc, base, bytes.count)
    }

    /// Eight lowercase hex digits, as the header stores it.
    public static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
