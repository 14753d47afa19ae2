import CPlatform

#if canImport(Glibc)
import Glibc
#endif

/// The text of the current errno.
func errnoText() -> String { String(cString: strerror(errno)) }

/// A whole file mapped read-only into memory. Tensor views point into it, so it lives as long as
/// any of them (they hold a reference).
public final class FileMapping: @unchecked Sendable {
    public let path: String
    /// The file's bytes; empty for an empty file.
    public let bytes: UnsafeRawBufferPointer

    /// Whether `bytes` is a private copy (freed) rather than a mapping (unmapped).
    private let owned: Bool

    /// A private copy of some bytes standing in for a file (for fuzzing and tests).
    public init(copying source: UnsafeRawBufferPointer, path: String) {
        self.path = path
        owned = true
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 4096)
        if let base = source.baseAddress { copy.baseAddress!.copyMemory(from: base, byteCount: source.count) }
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(copy)[0..<source.count])
    }

    /// Maps the file at `path`; a file larger than `maximumBytes` is refused before it is read.
    public init(path: String, maximumBytes: Int = Int.max) throws(FileError) {
        self.path = path
        owned = false
        // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw FileError(path: path, problem: IOError.cannotOpen(errnoText())) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, problem: IOError.cannotRead(errnoText())) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileError(path: path, problem: IOError.isADirectory) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, problem: IOError.notARegularFile) }
        FilesRead.record(info)
        let size = Int(info.st_size)
        guard size <= maximumBytes else { throw FileError(path: path, problem: IOError.tooLarge(size: size, limit: maximumBytes)) }
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw FileError(path: path, problem: IOError.cannotMap(errnoText()))
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
        moeckpt_mapping_register(base, size, path, TerminalText.escaped(path))
    }

    /// A mapped input that is now shorter than its mapping (truncated while being read), if any.
    public static var shrunkInput: String? { moeckpt_mapping_shrunk().map { String(cString: $0) } }

    /// The path of the mapped input that holds `address`, if any.
    public static func path(holding address: UnsafeRawPointer) -> String? {
        moeckpt_mapping_label(address).map { String(cString: $0) }
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if owned {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            moeckpt_mapping_unregister(base)
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// Tells the kernel these pages will not be needed again, so a long streaming read does not
    /// keep the whole file resident. Not for a private copy: its dropped pages would read back as
    /// zeros (and a page can hold bytes of other tensors still to be read).
    public func release(_ range: Range<Int>) {
        guard !owned, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = range.lowerBound / page * page
        let end = min(range.upperBound / page * page, bytes.count)
        guard end > start else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }
}

/// Every file this process has opened for reading, so that no command writes over one of its own
/// inputs, whatever path or link names it. A file is known by device, inode and change time: an
/// inode freed and reused by a new file (in a long-running process) is not mistaken for an input.
public enum FilesRead {
    private struct Identity: Hashable {
        let device: UInt64, inode: UInt64, changedSeconds: Int, changedNanoseconds: Int
        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            changedSeconds = info.st_ctim.tv_sec
            changedNanoseconds = info.st_ctim.tv_nsec
        }
    }
    nonisolated(unsafe) private static var identities: Set<Identity> = []
    private static let lock = PthreadLock()

    static func record(_ info: stat) {
        lock.locked { _ = identities.insert(Identity(info)) }
    }

    /// Whether `path` (links followed) is a file read so far.
    public static func contains(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return lock.locked { identities.contains(Identity(info)) }
    }
}
