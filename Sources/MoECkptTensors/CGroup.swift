/// Where this process's cgroup keeps a controller's files, from /proc/self/cgroup: the unified
/// cgroup v2 directory, or the controller's v1 hierarchy; each at the process's path, then at the
/// namespace root (what a container sees of its own cgroup).
enum CGroup {
    enum Version { case v1, v2 }

    /// The directories to read, v2 and v1 as the process has them; `v1Mounts` are where the v1
    /// controller may be mounted under /sys/fs/cgroup (`cpu,cpuacct`, `cpu`).
    static func directories(v1Controller: String, v1Mounts: [String]) -> [(version: Version, directory: String)] {
        var out: [(version: Version, directory: String)] = []
        for line in (MemoryBudget.readText("/proc/self/cgroup") ?? "").split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" {
                out += ["/sys/fs/cgroup" + path, "/sys/fs/cgroup"].map { (.v2, $0) }
            } else if fields[1].split(separator: ",").contains(Substring(v1Controller)) {
                for mount in v1Mounts { out += ["/sys/fs/cgroup/\(mount)" + path, "/sys/fs/cgroup/\(mount)"].map { (.v1, $0) } }
            }
        }
        return out
    }

    /// A number file (`memory.max`, `cpu.cfs_quota_us`); nil when absent or not a number ("max").
    static func number(_ path: String) -> Int? { MemoryBudget.readText(path).flatMap { Int($0.trimmingSpaces) } }
}
