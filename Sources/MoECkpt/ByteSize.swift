/// Sizes written the way transformers' `max_shard_size` takes them: `5GB` (10^9), `500MB`,
/// `2GiB` (2^30), `100KB`, or a plain number of bytes.
public enum ByteSize {
    private static let units: [(suffix: String, factor: Double)] = [
        ("TIB", 1_099_511_627_776), ("GIB", 1_073_741_824), ("MIB", 1_048_576), ("KIB", 1024),
        ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1),
    ]

    public static func parse(_ text: String) -> Int? {
        let upper = text.uppercased().filter { $0 != " " }
        for (suffix, factor) in units where upper.hasSuffix(suffix) {
            guard let number = Double(upper.dropLast(suffix.count)), number > 0 else { return nil }
            let bytes = number * factor
            return bytes < 9e18 ? Int(bytes) : nil
        }
        guard let bytes = Int(upper), bytes > 0 else { return nil }
        return bytes
    }

    /// `1.23 GB`-style text for people.
    public static func describe(_ bytes: Int) -> String {
        let value = Double(bytes)
        for (suffix, factor) in [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)] where value >= factor {
            return formatted(value / factor) + " " + suffix
        }
        return "\(bytes) B"
    }

    static func formatted(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

/// `1,234,567`: thousands separators for parameter and byte counts.
func grouped(_ value: Int) -> String {
    let digits = Array(String(value.magnitude).utf8)
    var out: [UInt8] = value < 0 ? [UInt8(ascii: "-")] : []
    out.reserveCapacity(digits.count + digits.count / 3 + 1)
    for (i, digit) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(UInt8(ascii: ",")) }
        out.append(digit)
    }
    return String(decoding: out, as: UTF8.self)
}

/// How many characters `grouped(value)` takes, without making it.
func groupedWidth(_ value: Int) -> Int {
    let digits = decimalDigits(value.magnitude)
    return digits + (digits - 1) / 3 + (value < 0 ? 1 : 0)
}

func decimalDigits(_ value: UInt) -> Int {
    var (count, rest) = (1, value)
    while rest >= 10 { rest /= 10; count += 1 }
    return count
}
