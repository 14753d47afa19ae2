import MoECkptTestSupport
import Testing

@testable import MoECkptForward

/// Attention in blocks of queries (long sequences, issue 12 finding 5) against the whole-sequence
/// computation it replaces there.
struct AttentionTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    @Test(arguments: [HeadAttention.Mask.none, .causal(window: nil), .causal(window: 5)])
    func blocksOfQueriesMatchTheWholeSequence(mask: HeadAttention.Mask) {
        let (tokens, d) = (37, 8)
        let (q, k, v) = (Self.random(tokens * d, seed: 1), Self.random(tokens * d, seed: 2), Self.random(tokens * d, seed: 3))
        let whole = HeadAttention.attend(queries: q, keys: k, values: v, tokens: tokens, d: d, scaling: 0.35, mask: mask)
        for rows in [1, 3, 5, 16, 36] {
            let blocked = HeadAttention.attend(
                queries: q, keys: k, values: v, tokens: tokens, d: d, scaling: 0.35, mask: mask,
                blockRows: rows)
            let worst = zip(whole, blocked).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6, "\(mask) blocks of \(rows): max difference \(worst)")
        }
    }

    /// A masked key never contributes: each row's output is a convex combination of the values it
    /// may see (checked on the first row, which sees one key under the causal mask).
    @Test func theFirstCausalRowIsItsOwnValue() {
        let (tokens, d) = (9, 4)
        let (q, k, v) = (Self.random(tokens * d, seed: 4), Self.random(tokens * d, seed: 5), Self.random(tokens * d, seed: 6))
        for rows in [nil, 2] as [Int?] {
            let out = HeadAttention.attend(
                queries: q, keys: k, values: v, tokens: tokens, d: d, scaling: 0.5,
                mask: .causal(window: nil), blockRows: rows)
            #expect(Array(out[0..<d]) == Array(v[0..<d]))
        }
    }

    /// Memory for one head grows with the sequence, not its square, past the whole-sequence limit.
    @Test func scratchGrowsLinearlyForLongSequences() {
        let long = HeadAttention.scratchBytes(tokens: 100_000, d: 128)
        #expect(long < 200 << 20)
        #expect(HeadAttention.scratchBytes(tokens: 200_000, d: 128) < 2 * long + 1024)
        #expect(HeadAttention.scratchBytes(tokens: 1 << 60, d: 128) == Int.max)  // overflow counts as too much
    }
}
