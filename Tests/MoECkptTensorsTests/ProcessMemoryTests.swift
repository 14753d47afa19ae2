import Glibc
import Testing

@testable import MoECkptTensors

struct ProcessMemoryTests {
    /// 64 MiB touched and held for 50 ms (the sampler reads every 10 ms) shows in the anonymous
    /// peak, and is freed before the call returns; the resident peak is at least that.
    @Test func peakAnonymousSeesMemoryHeldDuringTheBody() throws {
        let bytes = 64 << 20
        let before = try #require(ProcessMemory.anonymousNow())
        let peak = ProcessMemory.peakAnonymous {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            memset(buffer, 1, bytes)
            usleep(50_000)
            buffer.deallocate()
        }
        #expect(peak - before >= bytes - (4 << 20), "peak \(peak), before \(before)")
        #expect(try #require(ProcessMemory.peakResident()) >= peak)
    }

    /// A cgroup's usage counts the mapped weights' file pages; the budget counts only what cannot
    /// be reclaimed (excerpts of real memory.stat files, v1 from this machine's kernel).
    @Test func cgroupBudgetLeavesOutCleanPageCache() {
        let v1 = "cache 9000\nrss 100\ntotal_cache 2147483648\ntotal_rss 38699008\ntotal_shmem 4096\ntotal_dirty 8192\ntotal_writeback 0\n"
        #expect(MemoryBudget.reclaimableFileBytes(stat: v1, version: .v1) == 2_147_483_648 - 4096 - 8192)
        let v2 = "anon 1000\nfile 5000000\nshmem 1000\nfile_dirty 2000\nfile_writeback 3000\n"
        #expect(MemoryBudget.reclaimableFileBytes(stat: v2, version: .v2) == 4_994_000)
        #expect(MemoryBudget.reclaimableFileBytes(stat: "file 10\nshmem 20\n", version: .v2) == 0)
        #expect(MemoryBudget.reclaimableFileBytes(stat: "", version: .v1) == 0)
    }
}
