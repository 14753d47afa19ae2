import Dispatch
import Synchronization
import Testing

@testable import MoECkptKernels

/// `Parallel` on the worker pool: every part runs once, whoever calls, however often, nested or
/// from several threads at once (those fall back to Dispatch).
struct ParallelTests {
    /// Counts per index, filled by concurrent parts.
    final class Counts: Sendable {
        let slots: Mutex<[Int]>
        init(_ count: Int) { slots = Mutex(Array(repeating: 0, count: count)) }
        func add(_ i: Int) { slots.withLock { $0[i] += 1 } }
        var values: [Int] { slots.withLock { $0 } }
    }

    @Test func everyRangeRunsOnceInManyRegions() {
        let counts = Counts(1000)
        for round in 0..<2000 {
            let total = 1 + round % 1000
            Parallel.ranges(total, threads: 1 + round % 4, alignment: 1 + round % 3) { range in
                for i in range { counts.add(i) }
            }
        }
        // Index i is covered by every round whose total exceeds it.
        let expected = (0..<1000).map { i in (0..<2000).filter { 1 + $0 % 1000 > i }.count }
        #expect(counts.values == expected)
    }

    @Test func dynamicJobsRunOnce() {
        let counts = Counts(97)
        for _ in 0..<500 {
            Parallel.dynamic(97, threads: 3) { counts.add($0) }
        }
        #expect(counts.values == Array(repeating: 500, count: 97))
    }

    @Test func regionsInsideJobsAndOnOtherThreadsRun() {
        let counts = Counts(64)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<200 {
                Parallel.ranges(4, threads: 2) { outer in
                    for o in outer {
                        Parallel.ranges(4, threads: 2) { inner in
                            for i in inner { counts.add(caller * 16 + o * 4 + i) }
                        }
                    }
                }
            }
        }
        #expect(counts.values == Array(repeating: 200, count: 64))
    }

    /// A worker left idle past its spin time sleeps; the next region must wake it.
    @Test func sleepingWorkersWake() {
        let counts = Counts(2)
        for _ in 0..<3 {
            Parallel.ranges(2, threads: 2) { range in
                for i in range { counts.add(i) }
            }
            _ = DispatchSemaphore(value: 0).wait(timeout: .now() + .nanoseconds(Int(WorkerPool.spinTime) * 2 + 5_000_000))
        }
        #expect(counts.values == [3, 3])
    }
}
