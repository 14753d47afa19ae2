#if canImport(Glibc)
import Glibc
#endif

/// How many CPUs this process may use: the least of the CPUs online, its affinity mask
/// (`taskset`, a container's cpuset) and its CPU cgroup's quota (cgroup v2 `cpu.max`, v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us`, rounded up), as the default thread count.
public enum CPUBudget {
    public static var usableCPUs: Int {
        var count = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if let affinity = affinityCount { count = min(count, affinity) }
        if let quota = cgroupQuota { count = min(count, quota) }
        return max(1, count)
    }

    /// CPUs in this process's affinity mask: /proc/self/status's `Cpus_allowed_list` ("0-3,8").
    static var affinityCount: Int? {
        let status = MemoryBudget.readText("/proc/self/status") ?? ""
        return ProcessMemory.statusField("Cpus_allowed_list", in: status).flatMap { cpuListCount(String($0)) }
    }

    /// CPUs in a kernel CPU list ("0-3,8,10-11"); nil when it does not parse.
    static func cpuListCount(_ list: String) -> Int? {
        var count = 0
        for range in list.trimmingSpaces.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = range.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            switch ends.count {
            case 1 where ends[0] != nil: count += 1
            case 2: guard let low = ends[0], let high = ends[1], low <= high else { return nil }; count += high - low + 1
            default: return nil
            }
        }
        return count > 0 ? count : nil
    }

    /// The CPU cgroup's quota in whole CPUs (rounded up), for the cgroup this process is in.
    static var cgroupQuota: Int? {
        var quota: Int?
        for (version, directory) in CGroup.directories(v1Controller: "cpu", v1Mounts: ["cpu,cpuacct", "cpu"]) {
            let microseconds: (quota: Int?, period: Int?)
            if version == .v2 {
                // "quota period", or "max period" when unlimited.
                let parts = MemoryBudget.readText(directory + "/cpu.max")?.split(separator: " ") ?? []
                microseconds = parts.count == 2 ? (Int(parts[0]), Int(parts[1].trimmingSpaces)) : (nil, nil)
            } else {
                microseconds = (CGroup.number(directory + "/cpu.cfs_quota_us"), CGroup.number(directory + "/cpu.cfs_period_us"))
            }
            guard let q = microseconds.quota, q > 0, let p = microseconds.period, p > 0 else { continue }
            quota = min(quota ?? Int.max, (q + p - 1) / p)
        }
        return quota
    }
}
