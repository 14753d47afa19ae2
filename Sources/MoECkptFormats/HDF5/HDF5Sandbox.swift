import CPlatform

#if canImport(Glibc)
import Glibc
#endif

/// libhdf5 1.10 is not robust against corrupt files: fuzzing finds inputs that make it free
/// invalid pointers inside `H5Lvisit`. moeckpt therefore walks a file's structure first in a forked
/// child process; if libhdf5 crashes there, the file is refused with a message instead of taking
/// moeckpt down. The child has a time limit too, so a file that makes libhdf5 loop is refused.
/// The HDF5 writer's libhdf5 calls run in a child as well (`run(feeding:_:)`), fed its bytes
/// through a pipe by the caller's process.
enum HDF5Sandbox {
    /// Files whose datasets together are at most this large are also read in full by the child.
    static let fullReadLimit = 64 << 20
    static let timeLimitSeconds = 10.0

    /// `crashed` carries the signal, or the exit status of a child that reported its own crash.
    enum Outcome { case safe, failed(String), crashed(Int32), timedOut, unavailable }

    /// Runs `probe` in a child process.
    static func run(_ probe: () -> Void) -> Outcome {
        run(timeLimit: timeLimitSeconds, quiet: true) {
            probe(); return nil
        }
    }

    /// Runs `body` in a child process; a message it returns comes back as `.failed`. The fork
    /// happens holding the libhdf5 lock, so no other thread is inside libhdf5 (or holding the
    /// lock) in the copy of the process the child gets.
    static func run(timeLimit: Double?, quiet: Bool = false, _ body: () -> String?) -> Outcome {
        HDF5.locked {
            guard let child = spawn(quiet: quiet, closingInChild: [], body) else { return .unavailable }
            return reap(child, timeLimit: timeLimit)
        }
    }

    /// Runs `body` in a child process that reads its input from a pipe (the descriptor it is
    /// given), while `feed` runs here and writes into the pipe through a `ChildInput`; then waits
    /// for the child. Only the fork holds the libhdf5 lock: `feed` may use libhdf5 itself (an HDF5
    /// input read on demand) while the child works. An error `feed` throws ends the child (killed
    /// and reaped) and is rethrown as is, unless the child had stopped reading: then its outcome
    /// (an error message, a crash) is what went wrong, and it is returned instead.
    static func run<Failure: Error>(
        feeding feed: (ChildInput) throws(Failure) -> Void,
        _ body: (_ input: Int32) -> String?
    ) throws(Failure) -> Outcome {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { return .unavailable }
        // A bigger pipe means fewer switches between the processes (the default is 64 KiB);
        // where the system allows less, the default stays.
        _ = fcntl(ends[1], setPipeSize, Int32(pipeBytes))
        let started = HDF5.locked { spawn(quiet: false, closingInChild: [ends[1]]) { body(ends[0]) } }
        close(ends[0])
        let input = ChildInput(ends[1])
        defer { input.close() }
        guard let child = started else { return .unavailable }
        do {
            try feed(input)
        } catch  where !input.broken {
            kill(child.pid, SIGKILL)
            _ = reap(child, timeLimit: nil)
            throw error
        } catch {
            // The child stopped reading: its outcome says why.
        }
        input.close()  // the child sees the end of its input
        let outcome = reap(child, timeLimit: nil)
        if input.broken, case .safe = outcome { return .failed("the writer process stopped reading its input") }
        return outcome
    }

    /// Bytes of the pipe to a streaming child, when the system allows that much.
    static let pipeBytes = 1 << 20
    /// F_SETPIPE_SZ (Linux; Glibc leaves it out without _GNU_SOURCE).
    private static let setPipeSize: Int32 = 1031

    /// The write end of the pipe to a child started by `run(feeding:_:)`.
    final class ChildInput {
        private var fd: Int32
        /// The child stopped reading (it exited or died): nothing more can be written.
        private(set) var broken = false

        init(_ fd: Int32) { self.fd = fd }

        /// Writes all of `bytes`, retrying after short writes and EINTR; nil when done, else the
        /// errno of the write that failed and how many bytes went before it. EPIPE means the child
        /// stopped reading (`broken`). A write to a pipe whose reader is gone raises SIGPIPE, which
        /// would end moeckpt: the signal is blocked in the writing thread for the call and, when
        /// the write fails with EPIPE, taken off the thread's pending signals before it is unblocked.
        func write(_ bytes: UnsafeRawBufferPointer) -> (errno: Int32, written: Int)? {
            guard !broken, fd >= 0 else { return (EPIPE, 0) }
            guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
            var pipeSignal = sigset_t()
            sigemptyset(&pipeSignal)
            sigaddset(&pipeSignal, SIGPIPE)
            var previous = sigset_t()
            pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, base + offset, bytes.count - offset)
                if n >= 0 { offset += n; continue }
                let error = errno
                if error == EINTR { continue }
                if error == EPIPE {
                    broken = true
                    if sigismember(&previous, SIGPIPE) == 0 {
                        var none = timespec()
                        while sigtimedwait(&pipeSignal, nil, &none) < 0 && errno == EINTR {}
                    }
                }
                // EFAULT, say: the kernel could not read the source (an input mapping lost its pages).
                return (error, offset)
            }
            return nil
        }

        func close() {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }

        deinit { close() }
    }

    /// A started child: its process id and the read end of the pipe its error message comes back
    /// through.
    private struct Child {
        let pid: pid_t
        let messages: Int32
    }

    /// Forks a child that runs `body` and exits: 0, or 3 after writing the message `body` returned
    /// into the message pipe. The child closes `closingInChild` (this process's ends of other pipes).
    /// Nil when no child could be started.
    private static func spawn(quiet: Bool, closingInChild: [Int32], _ body: () -> String?) -> Child? {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        let parent = getpid()
        // Signals wait until the child has set itself up (a handler of this process run in its
        // first instants would find libc's locks still held by the fork, and would deadlock) and
        // until this process has recorded the child (so that its own handlers end the child).
        var blocked = sigset_t()
        sigfillset(&blocked)
        var previous = sigset_t()
        pthread_sigmask(SIG_SETMASK, &blocked, &previous)
        let pid = fork()
        if pid == 0 {
            // Never outlive the parent (after a kill -9 of moeckpt, a writer would go on filling an
            // unlinked or partial file).
            if moeckpt_die_with_parent(parent) != 0 { _exit(4) }
            HDF5.inSandboxChild = true
            // A crash in the child is the parent's information, not something to report or
            // handle here (handlers inherited from sanitizers or fuzzers would): die by the signal.
            for crash in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT] { signal(crash, SIG_DFL) }
            // Interruptions end the child as they would any process (the parent's handlers, which
            // remove its outputs, are the parent's to run); one the parent ignores stays ignored.
            for interruption in [SIGINT, SIGTERM, SIGHUP] {
                let handler = signal(interruption, SIG_DFL)
                if unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { signal(interruption, SIG_IGN) }
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
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
            for fd in closingInChild { close(fd) }
            if let message = body() {
                _ = message.withCString { write(pipeEnds[1], $0, strlen($0)) }
                _exit(3)
            }
            _exit(0)
        }
        // The signal handlers that end moeckpt end the child first.
        if pid > 0 { InterruptCleanup.child = pid }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        close(pipeEnds[1])
        guard pid > 0 else {
            close(pipeEnds[0])
            return nil
        }
        return Child(pid: pid, messages: pipeEnds[0])
    }

    /// Waits for the child (killing it after `timeLimit` seconds) and reads what became of it.
    private static func reap(_ child: Child, timeLimit: Double?) -> Outcome {
        defer {
            InterruptCleanup.child = 0
            close(child.messages)
        }
        var status: Int32 = 0
        var waited = 0.0
        while true {
            let result = waitpid(child.pid, &status, WNOHANG)
            if result == child.pid { break }
            if result < 0 {
                if errno == EINTR { continue }
                return .unavailable
            }
            if let timeLimit, waited >= timeLimit {
                kill(child.pid, SIGKILL)
                while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
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
                let n = read(child.messages, &chunk, chunk.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                message += chunk[0..<n]
            }
            return .failed(String(decoding: message, as: UTF8.self))
        }
        return .safe
    }
}
