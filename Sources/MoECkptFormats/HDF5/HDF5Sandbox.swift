import CPlatform
#if canImport(Glibc)
import Glibc
#endif

/// libhdf5 1.10 is not robust against corrupt files: fuzzing finds inputs that make it free
/// invalid pointers inside `H5Lvisit`. moeckpt therefore walks a file's structure first in a forked
/// child process; if libhdf5 crashes there, the file is refused with a message instead of taking
/// moeckpt down. The child has a time limit too, so a file that makes libhdf5 loop is refused.
enum HDF5Sandbox {
    /// Files whose datasets together are at most this large are also read in full by the child.
    static let fullReadLimit = 64 << 20
    static let timeLimitSeconds = 10.0

    /// `crashed` carries the signal, or the exit status of a child that reported its own crash.
    enum Outcome { case safe, failed(String), crashed(Int32), timedOut, unavailable }

    /// Runs `probe` in a child process.
    static func run(_ probe: () -> Void) -> Outcome {
        run(timeLimit: timeLimitSeconds, quiet: true) { probe(); return nil }
    }

    /// Runs `body` in a child process; a message it returns comes back as `.failed`. The fork
    /// happens holding the libhdf5 lock, so no other thread is inside libhdf5 (or holding the
    /// lock) in the copy of the process the child gets.
    static func run(timeLimit: Double?, quiet: Bool = false, _ body: () -> String?) -> Outcome {
        HDF5.locked { forkAndWait(timeLimit: timeLimit, quiet: quiet, body) }
    }

    private static func forkAndWait(timeLimit: Double?, quiet: Bool, _ body: () -> String?) -> Outcome {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return .unavailable }
        let parent = getpid()
        let pid = fork()
        if pid == 0 {
            // Never outlive the parent (after a kill -9 of moeckpt, a writer would go on filling an
            // unlinked or partial file).
            if moeckpt_die_with_parent(parent) != 0 { _exit(4) }
            HDF5.inSandboxChild = true
            // A crash in the child is the parent's information, not something to report or
            // handle here (handlers inherited from sanitizers or fuzzers would): die by the signal.
            for crash in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT] { signal(crash, SIG_DFL) }
            // Under a sanitizer (tests, fuzzing) its report stays, but the fuzzer's death callback
            // must not treat the child's crash as its own.
            if let setDeathCallback = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__sanitizer_set_death_callback") {
                typealias Setter = @convention(c) (UnsafeRawPointer?) -> Void
                unsafeBitCast(setDeathCallback, to: Setter.self)(nil)
            }
            if quiet {
                let devNull = open("/dev/null", O_WRONLY)
                if devNull >= 0 { dup2(devNull, 2) }
            }
            close(pipeEnds[0])
            if let message = body() {
                _ = message.withCString { write(pipeEnds[1], $0, strlen($0)) }
                _exit(3)
            }
            _exit(0)
        }
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard pid > 0 else { return .unavailable }
        // The signal handlers that end moeckpt end the child first.
        InterruptCleanup.child = pid
        defer { InterruptCleanup.child = 0 }
        var status: Int32 = 0
        var waited = 0.0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { break }
            if result < 0 { return .unavailable }
            if let timeLimit, waited >= timeLimit {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return .timedOut
            }
            usleep(2000)
            waited += 0.002
        }
        // WIFSIGNALED / WTERMSIG / WEXITSTATUS, which Swift does not import.
        let signal = status & 0x7f
        if signal != 0 && signal != 0x7f { return .crashed(signal) }
        let exitStatus = (status >> 8) & 0xff
        // Anything but 0 (fine) and 3 (an error message) is a crash the child reported itself
        // (an address sanitizer, say).
        if exitStatus != 0 && exitStatus != 3 { return .crashed(exitStatus) }
        if exitStatus == 3 {
            var message: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(pipeEnds[0], &chunk, chunk.count)
                if n <= 0 { break }
                message += chunk[0..<n]
            }
            return .failed(String(decoding: message, as: UTF8.self))
        }
        return .safe
    }
}
