import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// This process's memory as the kernel counts it, in bytes: what `bench` reports, to show that
/// weights read in place stay file pages and that the process's own (anonymous) memory does not
/// grow with the model.
public enum ProcessMemory {
    /// The resident set's peak since the process started (`VmHWM` of /proc/self/status), file
    /// pages included; nil where /proc does not say (not Linux).
    public static func peakResident() -> Int? {
        let status = MemoryBudget.readText("/proc/self/status") ?? ""
        return statusField("VmHWM", in: status).flatMap { Int($0.trimmingSpaces.dropLast(2)) }.map { $0 * 1024 }
    }

    /// The value of `name:` in /proc/self/status text ("VmRSS:   1234 kB" gives "   1234 kB").
    static func statusField(_ name: String, in status: String) -> Substring? {
        status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }).map { $0.dropFirst(name.count + 1) }
    }

    /// Resident anonymous bytes now, from /proc/self/statm (resident less shared pages): the
    /// counter the sampler reads (a smaller read than /proc/self/status).
    static func anonymousNow() -> Int? {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        guard count > 0 else { return nil }
        let fields = buffer[0..<count].split(separator: UInt8(ascii: " ")).prefix(3).compactMap { Int(String(decoding: $0, as: UTF8.self)) }
        guard fields.count == 3 else { return nil }
        return (fields[1] - fields[2]) * max(1, sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Runs `body` and returns the most anonymous memory seen meanwhile. The kernel keeps a peak of
    /// the whole resident set (`VmHWM`) but not of its anonymous part, so a second thread samples
    /// it every 10 ms (a peak shorter than that can be missed). Measured on `bench --what moe`,
    /// 128 tokens: sampling /proc/self/status every millisecond slowed the block by about 20% on
    /// two cores; statm every 10 ms is within the noise.
    public static func peakAnonymous<E: Error>(during body: () throws(E) -> Void) throws(E) -> Int {
        let sampler = Sampler(start: anonymousNow() ?? 0)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            while !sampler.stop.load(ordering: .relaxed) {
                sampler.sample()
                usleep(10_000)
            }
            done.signal()
        }
        defer {
            sampler.stop.store(true, ordering: .relaxed)
            done.wait()
        }
        try body()
        sampler.sample()
        return sampler.peak.load(ordering: .relaxed)
    }

    private final class Sampler: Sendable {
        let peak: Atomic<Int>
        let stop = Atomic(false)

        init(start: Int) { peak = Atomic(start) }

        func sample() {
            if let anonymous = ProcessMemory.anonymousNow() { peak.max(anonymous, ordering: .relaxed) }
        }
    }
}
