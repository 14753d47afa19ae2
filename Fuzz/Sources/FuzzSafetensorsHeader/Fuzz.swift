import FuzzDriver
import MoECkpt

/// The safetensors header rules on arbitrary bytes (a whole file).
@_cdecl("FuzzSafetensorsHeader_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in _ = try? SafetensorsHeader.parse(bytes) }
}
