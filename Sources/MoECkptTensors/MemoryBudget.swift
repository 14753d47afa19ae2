#if canImport(Glibc)
import Glibc
#endif

/// How much more memory this process may use: allocations sized by untrusted input are checked
/// against it before they are made. The budget is the least of the machine's available memory,
/// the address-space and data limits (`RLIMIT_AS`, `RLIMIT_DATA`, less what is already mapped) and
/// the memory cgroup's limit (cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`, less its usage other than
/// clean page cache).
public enum MemoryBudget {
    public static var physicalBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : bytes
    }

    /// The kernel's estimate of the memory new allocations can have without swapping
    /// (`MemAvailable` of /proc/meminfo: free memory and reclaimable caches), or nil.
    static var machineAvailableBytes: Int? {
        guard let text = readText("/proc/meminfo"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") })
        else { return nil }
        let fields = line.split(separator: " ")
        guard fields.count == 3, fields[2] == "kB", let kilobytes = Int(fields[1]) else { return nil }
        return kilobytes.multipliedReportingOverflow(by: 1024).overflow ? nil : kilobytes * 1024
    }

    /// Bytes this process can still allocate, by its limits.
    public static var availableBytes: Int {
        var available = min(physicalBytes, machineAvailableBytes ?? Int.max)
        let page = max(1, sysconf(Int32(_SC_PAGESIZE)))
        // statm: total program size and data + stack, in pages.
        let statm = readText("/proc/self/statm")?.split(separator: " ").compactMap { Int($0) } ?? []
        for (resource, usedPages) in [(RLIMIT_AS, statm.first), (RLIMIT_DATA, statm.count > 5 ? statm[5] : nil)] {
            var limit = rlimit()
            guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
                limit.rlim_cur < rlim_t(Int.max)
            else { continue }
            available = min(available, Int(limit.rlim_cur) - (usedPages ?? 0) * page)
        }
        if let cgroup = cgroupRemaining { available = min(available, cgroup) }
        return max(available, 0)
    }

    /// Whether `bytes` more could be allocated.
    public static func fits(_ bytes: Int) -> Bool { bytes >= 0 && bytes <= availableBytes }

    /// A 64-byte aligned buffer (release it with `free`), or an error instead of a crash when the
    /// limits refuse it or the allocation fails.
    public static func allocate(_ bytes: Int) throws(MemoryError) -> UnsafeMutableRawBufferPointer {
        guard fits(bytes) else { throw MemoryError(bytes: bytes, available: availableBytes) }
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, max(bytes, 1)) == 0, let pointer else {
            throw MemoryError(bytes: bytes, available: availableBytes)
        }
        return UnsafeMutableRawBufferPointer(start: pointer, count: bytes)
    }

    /// The memory cgroup's limit less its usage, for the cgroup this process is in (v2, then v1).
    /// Usage counts the page cache, the weights' mapped file pages among it: the clean ones are
    /// reclaimed when memory is needed, so they are not counted as used.
    static var cgroupRemaining: Int? {
        var remaining: Int?
        for (version, directory) in CGroup.directories(v1Controller: "memory", v1Mounts: ["memory"]) {
            let (limit, usage) = version == .v2 ? ("memory.max", "memory.current") : ("memory.limit_in_bytes", "memory.usage_in_bytes")
            // v2 says "max" when unlimited, which is no number.
            guard let max = CGroup.number(directory + "/" + limit), let used = CGroup.number(directory + "/" + usage) else { continue }
            let reclaimable = readText(directory + "/memory.stat").map { reclaimableFileBytes(stat: $0, version: version) } ?? 0
            remaining = Swift.min(remaining ?? Int.max, max - Swift.max(0, used - reclaimable))
        }
        return remaining
    }

    /// Clean file pages of a cgroup's `memory.stat`: the page cache less shared memory (tmpfs,
    /// which needs swap to leave) and dirty or writeback pages (which must be written first).
    static func reclaimableFileBytes(stat: String, version: CGroup.Version) -> Int {
        var fields: [Substring: Int] = [:]
        for line in stat.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int(parts[1]) { fields[parts[0]] = value }
        }
        // v1's hierarchical totals (`total_*`) include the child cgroups, as its usage does.
        let keys =
            version == .v2
            ? ["file", "shmem", "file_dirty", "file_writeback"] : ["total_cache", "total_shmem", "total_dirty", "total_writeback"]
        let values = keys.map { fields[Substring($0)] ?? 0 }
        return Swift.max(0, values[0] - values[1] - values[2] - values[3])
    }

    /// A small text file of /proc or /sys, whole (at most 64 KiB).
    static func readText(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 65536)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            count += n
        }
        return String(decoding: bytes[0..<count], as: UTF8.self)
    }
}

/// An allocation the process's memory limits do not allow.
public struct MemoryError: Error, CustomStringConvertible, Equatable, Sendable {
    public let bytes: Int
    public let available: Int

    public init(bytes: Int, available: Int) {
        self.bytes = bytes
        self.available = available
    }

    public var description: String {
        "it needs \(bytes) bytes of memory, more than this process may still use (\(available) bytes)"
    }
}

extension StringProtocol {
    var trimmingSpaces: String { String(filter { !$0.isWhitespace }) }
}
