import ArgumentParser
import CPlatform
import Foundation
import MoECkpt

#if canImport(Glibc)
import Glibc
#endif

struct Moeckpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "moeckpt",
        abstract: "Inspect, convert and verify Mixture-of-Experts checkpoints.",
        discussion: "Exit status: 0 success, 1 a failed numerical check, 2 bad input or usage.",
        version: "0.2.0",
        subcommands: [Inspect.self, Convert.self, VerifyCommand.self, CompareCommand.self, RunCommand.self, BenchCommand.self]
    )
}

/// Runs the command and maps every failure to one line on stderr and exit status 2 (bad input or
/// usage); ArgumentParser's own usage status (64) is folded into 2 as well.
@main
enum Main {
    static func main() {
        // The signals whose handlers end the HDF5 child and remove partial outputs must arrive,
        // even when the program that started moeckpt left them blocked (Foundation's Process does).
        var handled = sigset_t()
        sigemptyset(&handled)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&handled, sig) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        // A file truncated by another process while mapped raises SIGBUS on the next access of a
        // lost page; report it, naming the file, as bad input instead of dying.
        moeckpt_install_sigbus_handler { AtomicOutput.removeUnfinishedOutputs() }
        do {
            var command = try Moeckpt.parseAsRoot()
            try command.run()
        } catch let error as FileError {
            fail(error.description)  // escaped: one line whatever the file holds
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            if Moeckpt.exitCode(for: error) == .success {
                print(Moeckpt.fullMessage(for: error))
                exit(0)
            }
            fail(Moeckpt.fullMessage(for: error))
        }
    }

    /// One line on stderr, status 2. ArgumentParser's list of valid values (lines `- value`) is
    /// joined onto the first line; the rest of its usage text is replaced by a pointer to --help.
    static func fail(_ message: String) -> Never {
        var lines = message.split(separator: "\n", omittingEmptySubsequences: true)
        var first = lines.isEmpty ? "unknown error" : String(lines.removeFirst())
        if first.hasPrefix("Error: ") { first.removeFirst(7) }
        let values = lines.prefix { $0.drop { $0 == " " }.hasPrefix("- ") }.map { $0.drop { $0 == " " }.dropFirst(2) }
        if !values.isEmpty {
            first += " " + values.joined(separator: ", ")
            lines.removeFirst(values.count)
        }
        // Point to the help of the subcommand in use, which lists the values and examples.
        let names = Moeckpt.configuration.subcommands.compactMap { $0.configuration.commandName ?? String(describing: $0).lowercased() }
        let subcommand = CommandLine.arguments.dropFirst().first { names.contains($0) }
        let hint = lines.isEmpty ? "" : " (see moeckpt\(subcommand.map { " " + $0 } ?? "") --help)"
        writeToStandardError("moeckpt: error: \(first)\(hint)\n")
        exit(2)
    }
}

/// For the commands that run forward passes: activation buffers come and go with every layer;
/// kept in the heap once freed (not returned as fresh mappings, whose first touch costs 0.4-2.5 s
/// per GiB on these machines) they are reused warm. Not for convert, whose large one-tensor
/// buffers would then pile up in the heap.
func keepActivationBuffersWarm() {
    moeckpt_keep_freed_memory()
}

/// Prints a report as the `--json` of every command: pretty, keys sorted, non-finite numbers as
/// "inf", "-inf" and "nan".
func printJSON<Value: Encodable>(_ value: Value) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
