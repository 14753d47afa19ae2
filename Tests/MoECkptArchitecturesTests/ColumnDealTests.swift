import MoECkptFormats
import MoECkptTestSupport
import Testing

@testable import MoECkptModels

/// `ColumnDeal` against index arithmetic written out: part p of [m, rows, parts * columns] is the
/// columns p, p + parts, ..., transposed or not; joining the parts gives the stored bytes back.
struct ColumnDealTests {
    static func rope(_ values: [UInt16]) -> ByteRope {
        let storage = values.withUnsafeBytes { FileMapping(copying: $0, path: "test") }
        return ByteRope([BytePiece(storage: storage, offset: 0, count: values.count * 2)])
    }

    static func values(_ rope: ByteRope) throws -> [UInt16] {
        try rope.load()
        let bytes = rope.copyBytes()
        return (0..<bytes.count / 2).map { UInt16(bytes[2 * $0]) | UInt16(bytes[2 * $0 + 1]) << 8 }
    }

    @Test(arguments: [false, true])
    func everyElementLandsWhereTheIndicesSay(transposed: Bool) throws {
        let (m, rows, columns, parts) = (2, 3, 4, 3)
        let stored = (0..<(m * rows * parts * columns)).map { UInt16($0 * 3 + 1) }
        let partShape = transposed ? [m, columns, rows] : [m, rows, columns]
        let deal = try #require(ColumnDeal(partShape: partShape, parts: parts, transposed: transposed))
        #expect(deal.storedShape == [m, rows, parts * columns])
        var split: [ByteRope] = []
        for p in 0..<parts {
            let part = try #require(deal.part(p, of: Self.rope(stored), dtype: .bf16, name: "t"))
            let got = try Self.values(part)
            for b in 0..<m {
                for r in 0..<rows {
                    for c in 0..<columns {
                        let at = transposed ? (b * columns + c) * rows + r : (b * rows + r) * columns + c
                        #expect(got[at] == stored[(b * rows + r) * parts * columns + c * parts + p])
                    }
                }
            }
            split.append(part)
        }
        let joined = try #require(deal.joined(split, dtype: .bf16, name: "t"))
        #expect(try Self.values(joined) == stored)
    }

    @Test func packedDtypesAreNotDealt() throws {
        let deal = try #require(ColumnDeal(partShape: [2, 4], parts: 2, transposed: false))
        #expect(deal.part(0, of: Self.rope([0, 1, 2, 3, 4, 5, 6, 7]), dtype: .f4, name: "t") == nil)
    }
}
