/// Runs libFuzzer's driver with a Swift body. Each fuzz target's executable entry point
/// (`<target>_main`, as SwiftPM names it) calls `fuzz(argc, argv) { bytes in ... }`.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var body: (UnsafeRawBufferPointer) -> Void = { _ in }

public func fuzz(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ test: @escaping (UnsafeRawBufferPointer) -> Void
) -> CInt {
    body = test
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { data, size in
        body(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}
