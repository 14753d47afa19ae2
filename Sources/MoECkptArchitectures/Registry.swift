import MoECkptFormats
import MoECkptModels

/// The architectures moeckpt knows, in the order they are tried. A new family is its own file (or
/// folder) beside this one, conforming to `Architecture`, and one line here.
extension ArchitectureRegistry {
    public static let standard = ArchitectureRegistry([
        MixtralConfig.self,
        Qwen2MoEConfig.self,
        Qwen3MoEConfig.self,
        OLMoEConfig.self,
        GraniteMoEConfig.self,
        GraniteMoESharedConfig.self,
        DeepSeekV3Config.self,
        GptOssConfig.self,
        TopKMoEConfig.self,
        SwitchConfig.self,
        MixtralBlockConfig.self,
        BasicMoEConfig.self,
        SparseMoEConfig.self,
    ])
}

extension ModelLoader {
    /// Loads checkpoints as the architectures of the standard registry.
    public static let standard = ModelLoader(registry: .standard)

    /// Opens and loads a checkpoint as one of the standard architectures.
    public static func load(_ path: String) throws(FileError) -> LoadedModel { try standard.load(path) }
}
