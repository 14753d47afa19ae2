import FuzzDriver
import MoECkpt

/// A sharded checkpoint's index.json.
@_cdecl("FuzzShardIndex_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in _ = try? ShardedSafetensors.parseWeightMap(bytes) }
}
