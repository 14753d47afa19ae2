import Dispatch
import Synchronization

/// Splits work over threads. Every kernel splits so that each output element is computed by the
/// same operations whatever the thread count, so results are bit-identical for 1 or N threads.
public enum Parallel {
    /// Runs `body` on `count` contiguous ranges covering 0..<total, each a multiple of `alignment`
    /// except the last.
    public static func ranges(
        _ total: Int, threads: Int, alignment: Int = 1,
        _ body: @Sendable (Range<Int>) -> Void
    ) {
        let units = (total + alignment - 1) / alignment
        let parts = max(1, min(threads, units))
        if parts == 1 {
            body(0..<total)
            return
        }
        perform(parts) { part in
            let start = units * part / parts * alignment
            let end = min(total, units * (part + 1) / parts * alignment)
            if start < end { body(start..<end) }
        }
    }

    /// `body(part)` for part in 0..<parts, concurrently: on the worker pool, or on Dispatch when
    /// the pool is in use. The caller's `Linear.arithmetic` holds in every part (a pool's threads
    /// are not its task's).
    static func perform(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        let arithmetic = Linear.arithmetic
        if arithmetic == .exact {
            run(parts, body)
        } else {
            run(parts) { part in Linear.$arithmetic.withValue(arithmetic) { body(part) } }
        }
    }

    private static func run(_ parts: Int, _ body: @Sendable (Int) -> Void) {
        if !WorkerPool.shared.run(parts: parts, body) {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
        }
    }
}

extension Parallel {
    /// Runs `body(i)` for i in 0..<count on up to `threads` threads, each taking the next index
    /// when it is free (for jobs of uneven size; put the largest first).
    public static func dynamic(_ count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        let workers = max(1, min(threads, count))
        if workers == 1 {
            for i in 0..<count { body(i) }
            return
        }
        let next = Atomic<Int>(0)
        perform(workers) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < count else { return }
                body(i)
            }
        }
    }
}

/// A pointer that may cross into a concurrent closure: each thread writes a disjoint range.
public struct SendablePointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// A read-only pointer shared by concurrent closures.
public struct SendableConstPointer<T>: @unchecked Sendable {
    public let base: UnsafePointer<T>
    public init(_ base: UnsafePointer<T>) { self.base = base }
}

/// Read-only untyped memory shared by concurrent closures (weights in a file mapping).
public struct SendableRawPointer: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public init(_ base: UnsafeRawPointer) { self.base = base }
}
