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
}
