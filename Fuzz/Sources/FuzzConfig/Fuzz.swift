import FuzzDriver
import MoECkpt

/// config.json and params.json: parsing, the configuration's checks, and the tensor list it implies
/// (listed only when the planned scale is modest, as moeckpt lists it only for a checkpoint whose
/// size can hold it).
@_cdecl("FuzzConfig_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        guard let object = try? ConfigFields.parse(bytes) else { return }
        let registry = ArchitectureRegistry.standard
        for architecture in [try? registry.read(configJSON: object), (try? registry.read(.mistralParams(object))) ?? nil] {
            guard let architecture, architecture.inconsistencies.isEmpty else { continue }
            guard let scale = architecture.plannedScale, scale.tensors <= 100_000 else { continue }
            _ = architecture.canonicalTensors.count
            _ = architecture.layouts.count
        }
    }
}
