import Foundation

/// Paths of the committed fixtures, found from this source file's location.
public enum Fixtures {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// A raw little-endian array of `T` (see fixtures/dtypes/README.md).
    public static func array<T: FixedWidthInteger>(_ relative: String, of: T.Type) throws -> [T] {
        let data = try Data(contentsOf: root.appendingPathComponent(relative))
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / MemoryLayout<T>.size)).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }
}
