import FuzzDriver
import MoECkpt

/// The .moeckpt reader: structure, then every checksum.
@_cdecl("FuzzNative_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        let mapping = FileMapping(copying: bytes, path: "input.moeckpt")
        if let checkpoint = try? MoeckptFile.open(mapping) { _ = checkpoint.verifyChecksums() }
    }
}
