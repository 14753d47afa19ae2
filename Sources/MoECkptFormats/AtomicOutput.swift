#if canImport(Glibc)
import Glibc
#endif

/// Why an output cannot be written where asked.
public enum OutputError: Error, CustomStringConvertible, Equatable, Sendable {
    case destinationIsInput
    case directoryNotEmpty
    case parentMissing(String)
    case namesNotForNative
    case insideShardDirectory(String)

    public var description: String {
        switch self {
        case .destinationIsInput: "is a file this command reads: refusing to write over it"
        case .directoryNotEmpty: "output directory exists and is not empty"
        case .parentMissing(let parent): "cannot write here: \(parent) is not a directory"
        case .insideShardDirectory(let directory):
            "is inside \(directory), the directory of the sharded checkpoint being read; write elsewhere"
        case .namesNotForNative: "a .moeckpt file always holds moeckpt's canonical names; --names applies to safetensors output"
        }
    }
}

/// Writes an output (a file or a directory) under a temporary name beside its destination and moves
/// it into place only when complete, so an interrupted write never leaves a partial output.
///
/// Temporary names are `.<name>.moeckpt-partial-<pid>`; leftovers of a killed process (whose pid
/// no longer runs) are removed the next time the same destination is written. SIGINT and SIGTERM
/// remove the temporary output before the process exits.
public final class AtomicOutput: @unchecked Sendable {
    public let destination: String
    public let temporaryPath: String
    public let isDirectory: Bool
    private var finished = false
    /// Missing parent directories created for the output (outermost first), removed again if the
    /// output is abandoned and they are still empty.
    private var createdParents: [String] = []

    public init(destination: String, isDirectory: Bool) throws(FileError) {
        self.destination = destination
        self.isDirectory = isDirectory
        let parent = FileSystem.directoryName(destination)
        // As save_pretrained does (os.makedirs), missing parents are created.
        createdParents = try Self.createParents(parent, for: destination)
        // Any file read so far (checkpoint, shard, config, inputs), reached through any link.
        if FilesRead.contains(destination) {
            throw FileError(path: destination, problem: OutputError.destinationIsInput)
        }
        if isDirectory && FileSystem.isDirectory(destination) && !FileSystem.contents(ofDirectory: destination).isEmpty {
            throw FileError(path: destination, problem: OutputError.directoryNotEmpty)
        }
        let prefix = "." + FileSystem.baseName(destination) + ".moeckpt-partial-"
        PartialCleanup.removeStale(in: parent, prefix: prefix)
        temporaryPath = FileSystem.join(parent, prefix + String(getpid()))
        // A leftover of an earlier process that had this pid; anything else there stays, and the
        // exclusive create below fails on it.
        PartialCleanup.remove(temporaryPath, requireMarker: true)
        if isDirectory {
            guard mkdir(temporaryPath, 0o755) == 0 else {
                throw FileError(path: destination, problem: IOError.cannotWrite(errnoText()))
            }
            let marker = OutputFile.createExclusive(FileSystem.join(temporaryPath, PartialCleanup.marker))
            guard marker >= 0 else {
                throw FileError(path: destination, problem: IOError.cannotWrite(errnoText()))
            }
            close(marker)
        }
        InterruptCleanup.register(temporaryPath)
    }

    deinit { if !finished { abandon() } }

    /// Where to write a file of a directory output.
    public func path(of name: String) -> String { FileSystem.join(temporaryPath, name) }

    /// Moves the finished output into place.
    public func commit() throws(FileError) {
        if isDirectory { unlink(FileSystem.join(temporaryPath, PartialCleanup.marker)) }
        if isDirectory, FileSystem.isDirectory(destination) {
            rmdir(destination)  // rename(2) needs the empty destination directory gone or empty
        }
        guard rename(temporaryPath, destination) == 0 else {
            let why = errnoText()
            abandon()
            throw FileError(path: destination, problem: IOError.cannotRename(why))
        }
        finished = true
        InterruptCleanup.unregister(temporaryPath)
        // Make the rename itself durable.
        let dirFD = open(FileSystem.directoryName(destination), O_RDONLY | O_DIRECTORY)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }

    /// Removes every unfinished output of this process; for fatal-signal handlers.
    public static func removeUnfinishedOutputs() { InterruptCleanup.removeRegistered() }

    /// Removes whatever was written.
    public func abandon() {
        PartialCleanup.remove(temporaryPath, requireMarker: false)
        for directory in createdParents.reversed() { rmdir(directory) }  // only while empty
        finished = true
        InterruptCleanup.unregister(temporaryPath)
    }

    /// Creates `parent` and its missing ancestors; returns those created, outermost first.
    private static func createParents(_ parent: String, for destination: String) throws(FileError) -> [String] {
        var missing: [String] = []
        var directory = parent
        while !FileSystem.exists(directory) {
            missing.append(directory)
            let up = FileSystem.directoryName(directory)
            if up == directory { break }
            directory = up
        }
        guard FileSystem.isDirectory(directory) else {
            throw FileError(path: destination, problem: OutputError.parentMissing(directory))
        }
        var created: [String] = []
        for directory in missing.reversed() {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST && FileSystem.isDirectory(directory) else {
                let why = errnoText()
                for made in created.reversed() { rmdir(made) }
                throw FileError(path: destination, problem: IOError.cannotWrite(why))
            }
            created.append(directory)
        }
        return created
    }
}

/// Removes partial outputs without ever following a symlink: entries are examined with
/// `AT_SYMLINK_NOFOLLOW`, directories opened with `O_NOFOLLOW` and emptied through their descriptor
/// with `unlinkat`, so a link planted under a partial name (or inside a partial directory) is at
/// most unlinked, never traversed. Only entries owned by this user are touched, and another
/// process's partial directory only if it holds moeckpt's marker file.
enum PartialCleanup {
    /// The file moeckpt creates inside every partial directory (removed just before the rename).
    static let marker = ".moeckpt-partial"

    /// Removes `.<name>.moeckpt-partial-<pid>` leftovers in `directory` whose process is gone.
    static func removeStale(in directory: String, prefix: String) {
        for name in FileSystem.contents(ofDirectory: directory) where name.hasPrefix(prefix) {
            let suffix = name.dropFirst(prefix.count)
            guard let pid = Int32(suffix), String(pid) == suffix, pid > 0 else { continue }
            if pid == getpid() || kill(pid, 0) != 0 && errno == ESRCH {
                remove(FileSystem.join(directory, name), requireMarker: true)
            }
        }
    }

    /// Removes a partial output: a regular file, or a directory of files (sharded output).
    static func remove(_ path: String, requireMarker: Bool) {
        let parent = open(FileSystem.directoryName(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { return }
        defer { close(parent) }
        let name = FileSystem.baseName(path)
        guard let info = status(of: name, in: parent), info.st_uid == geteuid() else { return }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            unlinkat(parent, name, 0)
        case S_IFDIR:
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { return }
            var opened = stat()
            // The directory examined is the one opened (not swapped in between), and it is moeckpt's.
            guard fstat(fd, &opened) == 0, opened.st_ino == info.st_ino, opened.st_dev == info.st_dev,
                !requireMarker || status(of: marker, in: fd).map({ ($0.st_mode & S_IFMT) == S_IFREG && $0.st_uid == geteuid() }) == true
            else { close(fd); return }
            emptyDirectory(fd)
            unlinkat(parent, name, AT_REMOVEDIR)
        default:
            break  // a symlink or anything else moeckpt never creates under a partial name
        }
    }

    /// Unlinks the files and symlinks of an open directory (consumes `fd`); subdirectories, which
    /// moeckpt never creates there, stay (and so does the directory).
    private static func emptyDirectory(_ fd: Int32) {
        guard let dir = fdopendir(fd) else { close(fd); return }
        defer { closedir(dir) }
        for name in FileSystem.names(in: dir) {
            guard let info = status(of: name, in: dirfd(dir)), (info.st_mode & S_IFMT) != S_IFDIR else { continue }
            unlinkat(dirfd(dir), name, 0)
        }
    }

    /// `lstat` relative to a directory descriptor.
    private static func status(of name: String, in directory: Int32) -> stat? {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }
}
