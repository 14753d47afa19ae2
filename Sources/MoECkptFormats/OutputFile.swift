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
public final class OutputFile: ByteSink {
    public let path: String
    public private(set) var bytesWritten = 0
    private var fd: Int32

    public init(creating path: String) throws(FileError) {
        self.path = path
        fd = Self.createExclusive(path)
        guard fd >= 0 else { throw FileError(path: path, problem: IOError.cannotOpen(errnoText())) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// A new file, never an existing one and never through a symlink (O_EXCL fails on both).
    static func createExclusive(_ path: String) -> Int32 {
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
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
    }

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
