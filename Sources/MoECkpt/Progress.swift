#if canImport(Glibc)
import Glibc
#endif

/// Receives how many output bytes are done.
public protocol ProgressReporter: AnyObject {
    func start(totalBytes: Int)
    func advance(by bytes: Int)
    func finish()
}

/// A one-line progress bar on stderr: bytes done, rate and time left. Redrawn at most ten times a
/// second.
public final class TerminalProgressBar: ProgressReporter {
    private var total = 1
    private var done = 0
    private var started = 0.0
    private var lastDraw = 0.0

    public init() {}

    /// Whether stderr is a terminal (the bar is shown only then).
    public static var stderrIsTerminal: Bool { isatty(2) == 1 }

    public func start(totalBytes: Int) {
        total = max(totalBytes, 1)
        started = Self.now()
    }

    public func advance(by bytes: Int) {
        done += bytes
        let now = Self.now()
        if now - lastDraw >= 0.1 {
            lastDraw = now
            draw(now)
        }
    }

    public func finish() {
        draw(Self.now())
        writeToStandardError("\n")
    }

    private func draw(_ now: Double) {
        let fraction = min(Double(done) / Double(total), 1)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = max(now - started, 1e-6)
        let rate = Double(done) / elapsed
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line =
            "\r[\(bar)] \(Int(fraction * 100))% \(ByteSize.describe(done)) / \(ByteSize.describe(total))"
            + "  \(ByteSize.describe(Int(rate)))/s  ETA \(Int(remaining.rounded()))s "
        writeToStandardError(line)
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// Writes text to file descriptor 2 unbuffered (the C `stderr` global is not concurrency-safe).
public func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
        offset += n
    }
}
