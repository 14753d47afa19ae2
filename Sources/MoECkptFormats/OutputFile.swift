import CPlatform

#if canImport(Glibc)
import Glibc
#endif

/// Where a tensor's bytes are written: a file, or memory (for formats that write whole datasets).
public protocol ByteSink: AnyObject {
    var bytesWritten: Int { get }
    func write(_ bytes: UnsafeRawBufferPointer) throws(FileError)
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws(FileError) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(FileError) in try write(raw) } }
        try result.get()
    }
}

/// A file being written with write(2), retried on short writes and EINTR.
///
/// Writes are paced: each 32 MiB written is sent to disk at once (without waiting), and the 32 MiB
/// before it are waited for and dropped from the page cache. The disk then works while the data
/// is produced instead of all at the final fsync (a 2.9 GB shard: about as fast as `cp` then
/// `sync`, where writing it all first then syncing took 1.4x as long), and a conversion larger
/// than memory does not fill the page cache with its output.
public final class OutputFile: ByteSink {
    public let path: String
    public private(set) var bytesWritten = 0
    private var fd: Int32
    /// [sentStart, writeBackStart) was last sent to disk; what is before `sentStart` is on disk.
    private var sentStart = 0
    private var writeBackStart = 0
    static let writeBackStep = 32 << 20

    /// The CRC-32C of every byte written so far, when created `checksummed` (nil otherwise);
    /// bytes overwritten later are not accounted for.
    public private(set) var crc32c: UInt32?

    public init(creating path: String, checksummed: Bool = false) throws(FileError) {
        self.path = path
        crc32c = checksummed ? 0 : nil
        fd = Self.createExclusive(path)
        guard fd >= 0 else { throw FileError(path: path, problem: IOError.cannotOpen(errnoText())) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// A new file, never an existing one and never through a symlink (O_EXCL fails on both).
    static func createExclusive(_ path: String) -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        if let crc = crc32c { crc32c = CRC32C.checksum(bytes, continuing: crc) }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                // The kernel could not read the source: an input mapping lost its pages.
                if errno == EFAULT, let input = FileMapping.path(holding: bytes.baseAddress! + offset) {
                    throw FileError(path: input, problem: IOError.changedWhileReading)
                }
                throw FileError(path: path, problem: IOError.cannotWrite(errnoText()))
            }
            offset += n
        }
        bytesWritten += bytes.count
        if bytesWritten - writeBackStart >= Self.writeBackStep { writeBack() }
    }

    /// Starts the disk write of what was written since the last call, then waits for the range
    /// before it and drops its pages. Failures here are not errors: `close`'s fsync reports them.
    ///
    /// Ranges end on a page boundary: a page still being written back blocks the next write()
    /// into it (stable pages), so the partial last page waits for the next range. (Safetensors
    /// data starts mid-page: 2.9 GB took 5.6-6.7 s to write with unaligned ranges.)
    private func writeBack() {
        let end = bytesWritten & ~(Self.pageSize - 1)
        guard end > writeBackStart else { return }
        _ = moeckpt_write_back(fd, Int64(writeBackStart), Int64(end - writeBackStart), 0)
        let sent = writeBackStart - sentStart
        if sent > 0, moeckpt_write_back(fd, Int64(sentStart), Int64(sent), 1) == 0 {
            _ = posix_fadvise(fd, off_t(sentStart), off_t(sent), Int32(POSIX_FADV_DONTNEED))
        }
        (sentStart, writeBackStart) = (writeBackStart, end)
    }

    static let pageSize = max(4096, sysconf(Int32(_SC_PAGESIZE)))

    /// Overwrites bytes already written (a header whose checksums are known only at the end).
    public func overwrite(_ bytes: [UInt8], at offset: Int) throws(FileError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, problem: IOError.cannotWrite(errnoText()))
            }
            done += n
        }
    }

    /// Flushes to disk and closes; the data is durable before the rename that publishes it.
    public func close() throws(FileError) {
        let synced = fsync(fd) == 0
        let closed = Glibc.close(fd) == 0
        fd = -1
        guard synced, closed else {
            throw FileError(path: path, problem: IOError.cannotWrite(errnoText()))
        }
    }
}
