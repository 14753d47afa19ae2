/// A small deterministic generator (64-bit LCG with an xor-shift output), so that tests draw the
/// same "random" data on every run.
public struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state ^ (state >> 31)
    }
}
