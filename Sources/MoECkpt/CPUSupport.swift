import CPlatform

/// Whether this CPU runs this build. The kernels of the default x86-64 build use AVX2 and FMA
/// (x86-64-v3, Package.swift): on an older CPU the library's entry points and the CLI refuse with
/// a message instead of dying of SIGILL. This module is built for the baseline, so the check
/// itself runs anywhere. The portable build needs nothing.
public enum CPUSupport {
    /// Why this CPU cannot run this build; nil when it can.
    public static var problem: String? {
        #if REQUIRES_X86_64_V3
        if moeckpt_cpu_has_haswell_features() == 0 {
            return
                "this CPU lacks AVX2/FMA (x86-64-v3), which this build of moeckpt needs (the portable build, MOECKPT_PORTABLE=1, does not)"
        }
        #endif
        return nil
    }

    /// The entry points' check: the CPU problem as a `FileError` about `path`, the file the call was given.
    static func check(_ path: String) throws(FileError) {
        if let problem { throw FileError(path: path, problem: Unsupported(description: problem)) }
    }

    struct Unsupported: Error, CustomStringConvertible, Sendable { let description: String }
}
