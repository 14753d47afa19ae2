#if canImport(Glibc)
import Glibc
#endif

/// Removes temporary outputs when the process is interrupted. The handler only calls
/// async-signal-safe functions on paths prepared in advance.
enum InterruptCleanup {
    nonisolated(unsafe) private static var paths: [UnsafeMutablePointer<CChar>] = []
    nonisolated(unsafe) private static var installed = false
    /// A child process working for moeckpt (the HDF5 sandbox), ended before moeckpt exits on a signal.
    nonisolated(unsafe) static var child: pid_t = 0
    private static let lock = PthreadLock()

    static func register(_ path: String) {
        lock.locked {
            paths.append(strdup(path))
            installHandlers()
        }
    }

    /// SIGINT, SIGTERM and SIGHUP end the child and remove temporary outputs; so do crashes (an
    /// allocation that fails, a trap), which then go on to their default action.
    static func installHandlers() {
        guard !installed else { return }
        installed = true
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGFPE] { signal(sig, handler) }
    }

    static func unregister(_ path: String) {
        lock.locked {
            if let index = paths.firstIndex(where: { String(cString: $0) == path }) {
                free(paths.remove(at: index))
            }
        }
    }

    private static let handler: @convention(c) (Int32) -> Void = { sig in
        removeRegistered()
        signal(sig, SIG_DFL)
        raise(sig)
    }

    /// Removes every temporary output, from a signal handler (only async-signal-safe calls).
    /// Temporary outputs are single files, or directories of files (sharded output).
    static func removeRegistered() {
        if child > 0 { kill(child, SIGKILL) }
        for path in InterruptCleanup.paths {
            let fd = unlink(path) == 0 ? -1 : open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if fd >= 0, let dir = fdopendir(fd) {
                while let entry = readdir(dir) {
                    _ = withUnsafePointer(to: entry.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { unlinkat(dirfd(dir), $0, 0) }
                    }
                }
                closedir(dir)
                rmdir(path)
            }
        }
    }
}
