import CPlatform
import Dispatch
import Foundation
import Synchronization

/// Threads that stay awake for a moment after each parallel region, so that the next region of a
/// forward pass starts on them at once.
///
/// Why not only Dispatch: `concurrentPerform` wakes parked workers, which takes 40-60 µs on these
/// machines, while one token's forward pass runs about 30 parallel regions of 20-500 µs each
/// (docs/PERFORMANCE.md). Here a worker spins on its mailbox for `spinTime` after its last job
/// before it sleeps, as llama.cpp's and OpenMP's thread pools do.
///
/// One caller at a time: a region that finds the pool in use (another thread's region, or a region
/// nested in a job), or that runs in a forked child, is refused and runs on Dispatch instead.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle worker spins before it sleeps.
    static let spinTime: UInt64 = 2_000_000  // nanoseconds
    static let maxWorkers = 255

    /// The caller's handshake with one worker: it stores `job` and `part`, then publishes
    /// `requested`; the worker runs the job and publishes `finished` with the same generation.
    private final class Mailbox: @unchecked Sendable {
        let requested = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        /// Set by a worker about to sleep; whoever clears it owns the wake-up (see `sleep`).
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
        var job: ((Int) -> Void)?
        var part = 0
    }

    private let inUse = Atomic<Bool>(false)
    /// The process whose workers these are: a forked child has none of them (and refuses the pool).
    private let process = getpid()
    /// Only the caller that holds `inUse` reads or grows this.
    private var mailboxes: [Mailbox] = []

    /// Runs `body(part)` for every part in 0..<parts, part 0 on the calling thread, and returns
    /// when all are done; false (nothing run) when the pool is in use or `parts` is too many.
    func run(parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts - 1 <= Self.maxWorkers, getpid() == process,
            inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return false }
        defer { inUse.store(false, ordering: .releasing) }
        while mailboxes.count < parts - 1 { mailboxes.append(Self.startWorker()) }
        withoutActuallyEscaping(body) { job in
            var generations: [Int] = []
            generations.reserveCapacity(parts - 1)
            for part in 1..<max(1, parts) {
                let mailbox = mailboxes[part - 1]
                mailbox.job = job
                mailbox.part = part
                let generation = mailbox.requested.load(ordering: .relaxed) + 1
                generations.append(generation)
                mailbox.requested.store(generation, ordering: .sequentiallyConsistent)
                if mailbox.sleeping.exchange(false, ordering: .sequentiallyConsistent) { mailbox.wake.signal() }
            }
            job(0)
            for part in 1..<max(1, parts) {
                let mailbox = mailboxes[part - 1]
                var spins = 0
                while mailbox.finished.load(ordering: .acquiring) != generations[part - 1] {
                    moeckpt_spin_pause()
                    spins &+= 1
                    if spins & 1023 == 0 { sched_yield() }  // a worker waiting for this core (more threads than cores)
                }
                mailbox.job = nil  // before `withoutActuallyEscaping` checks that the closure did not escape
            }
        }
        return true
    }

    private static func startWorker() -> Mailbox {
        let mailbox = Mailbox()
        let thread = Thread { Self.serve(mailbox) }
        thread.name = "moeckpt worker"
        thread.start()
        return mailbox
    }

    private static func serve(_ mailbox: Mailbox) {
        var seen = 0
        while true {
            var spins = 0
            var deadline: UInt64 = 0
            while mailbox.requested.load(ordering: .acquiring) == seen {
                moeckpt_spin_pause()
                spins &+= 1
                guard spins & 1023 == 0 else { continue }
                // Every 20-30 µs: let a thread that has work have this core (more threads than
                // cores), then look at the clock.
                sched_yield()
                let now = DispatchTime.now().uptimeNanoseconds
                if deadline == 0 {
                    deadline = now + spinTime
                } else if now > deadline {
                    sleep(mailbox, seen: seen)
                    deadline = 0
                }
            }
            seen = mailbox.requested.load(ordering: .acquiring)
            runJob(mailbox)
            mailbox.finished.store(seen, ordering: .releasing)
        }
    }

    /// Its own function, so that the worker's reference to the job ends before `finished` is
    /// published.
    @inline(never)
    private static func runJob(_ mailbox: Mailbox) {
        mailbox.job?(mailbox.part)
    }

    /// Blocks until the caller publishes a generation after `seen`. The worker sets `sleeping`,
    /// then looks at `requested` again; the caller publishes `requested`, then clears `sleeping`.
    /// Whichever of the two clears the flag decides: the caller signals, and then the worker waits
    /// for that signal, whether or not it has seen the new generation.
    private static func sleep(_ mailbox: Mailbox, seen: Int) {
        mailbox.sleeping.store(true, ordering: .sequentiallyConsistent)
        if mailbox.requested.load(ordering: .sequentiallyConsistent) != seen,
            mailbox.sleeping.exchange(false, ordering: .sequentiallyConsistent)
        {
            return
        }
        mailbox.wake.wait()
    }
}
