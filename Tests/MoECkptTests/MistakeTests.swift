import Foundation
import Testing

@testable import MoECkpt
@testable import MoECkptTensors

/// compare's element-wise diagnoses: each named for the change that makes it, none for a change
/// no known mistake makes.
struct MistakeTests {
    /// Values of a generic weight matrix, deterministic, with no two alike.
    static let values: [Float] = (0..<96).map { (i: Int) -> Float in
        let angle = Double(i) * 1.7 + 0.3
        return Float(sin(angle)) * 0.37 + Float(i % 5) * 0.011
    }
    static let exact = WeightTolerance(atol: 0, rtol: 0)

    @Test func valueChangesAreNamed() {
        let a = Self.values
        func named(_ b: [Float]) -> Mistake? { Mistake.valueMistake(a, b, dtype: .f32, tolerance: Self.exact) }
        #expect(named(a.map { 0.125 * $0 }) == .scaled(0.125))
        #expect(named(a.map { -$0 }) == .signFlipped)
        let shifted = named(a.map { $0 - 1 })
        #expect(shifted?.description.hasPrefix("shifted by -1 (a norm weight") == true, "\(String(describing: shifted))")
        #expect(named(a.map { _ in 0 }) == .zeros)
        #expect(named(a.map { $0 * 1e6 }.enumerated().map { $0.offset == 7 ? .infinity : $0.element }) == .nonFinite)
        // torch's own roundings (FloatBits is checked against them in the tensors' tests)
        #expect(named(a.map { $0.rounded(to: .bf16) }) == .rounded(.bf16))
        #expect(named(a.map { $0.rounded(to: .f16) }) == .rounded(.f16))
        // A copy made in BF16 has nothing narrower to be rounded to.
        #expect(Mistake.valueMistake(a, a.map { $0.rounded(to: .f16) }, dtype: .bf16, tolerance: Self.exact) == nil)
        // Noise is no mistake.
        #expect(named(a.enumerated().map { $0.element + Float($0.offset % 3) * 1e-3 }) == nil)
        // A of zeros (a bias) says nothing of B.
        #expect(Mistake.valueMistake([0, 0, 0], [1, 2, 3], dtype: .f32, tolerance: Self.exact) == nil)
    }

    @Test func rotaryOrdersAreNamedByHeadSize() {
        // 24 rows of 4 columns: two heads of 12 rows.
        let (a, rows, columns) = (Self.values, 24, 4)
        func same(_ x: [Float], _ y: [Float]) -> Bool { x == y }
        func permuted(_ v: [Float], _ head: Int) -> [Float] { Mistake.rotary(v, columns: columns, headDim: head, toInterleaved: true) }
        func named(_ b: [Float]) -> Mistake? { Mistake.rotaryMistake(a, b, rows: rows, columns: columns, headDim: 12, same: same) }
        #expect(named(permuted(a, 12)) == .rotaryOnce)
        #expect(named(permuted(permuted(a, 12), 12)) == .rotaryTwice)
        #expect(named(permuted(a, 6)) == .rotaryWithOtherHeads(heads: 4, modelHeads: 2))
        #expect(named(a.reversed()) == nil)
        // The permutation moves rows within heads: head 0's row 1 is row 6 (the second half's first).
        #expect(Array(permuted(a, 12)[4..<8]) == Array(a[24..<28]))
    }
}
