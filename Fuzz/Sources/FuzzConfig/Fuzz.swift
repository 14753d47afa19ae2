import FuzzDriver
import MoECkpt

/// config.json and params.json: parsing, the configuration's checks, and the tensor list it implies.
@_cdecl("FuzzConfig_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    fuzz(argc, argv) { bytes in
        guard let object = try? ConfigFields.parse(bytes) else { return }
        if let architecture = try? Architecture(configJSON: object), architecture.inconsistencies.isEmpty {
            _ = architecture.canonicalTensors.count
            _ = architecture.layouts.count
        }
        if let config = try? MixtralConfig(mistralParams: object), config.inconsistencies.isEmpty {
            _ = Architecture.mixtral(config).canonicalTensors.count
        }
    }
}
