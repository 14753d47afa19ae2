import FuzzDriver
import MoECkpt

/// The GGUF header rules on arbitrary bytes (a whole file).
@_cdecl("FuzzGGUF_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in _ = try? GGUFHeader.parse(bytes) }
}
