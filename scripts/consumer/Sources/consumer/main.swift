// Verifies a model directory against its reference outputs through the MoECkpt library, and says
// which kernel variant ran: `swift run consumer <model-dir>`.
import Foundation
import MoECkpt

guard CommandLine.arguments.count == 2 else {
    print("usage: consumer <model-dir>")
    exit(2)
}
do {
    let report = try Verifier.verify(CommandLine.arguments[1])
    let worst = report.comparisons.map(\.maxAbsoluteError).max() ?? 0
    print("\(report.architecture): \(report.passed ? "passed" : "FAILED"), max |diff| \(worst), \(KernelVariant.selected.rawValue) kernels")
    exit(report.passed ? 0 : 1)
} catch {
    print("error: \(error)")
    exit(2)
}
