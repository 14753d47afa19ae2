/// config.json for a directory output. The input's own config.json passes through, in the layout
/// transformers writes (`json.dumps(indent=2, sort_keys=True)`), so an unchanged config comes out
/// byte for byte; only what the output changes is edited: `dtype` (and `torch_dtype`, transformers
/// 4's name, when the source has it) when the weights' dtype changes, and the keys the output
/// layout's readers need (`NamingLayout.configKeysReadersNeed`). An input without one (Mistral's
/// params.json, a GGUF file) gets moeckpt's description, with the dtype of its weights.
enum ConfigFile {
    static let name = "config.json"

    /// The input's config.json, when it has one beside its weights (a GGUF input's directory may
    /// hold another model's).
    static func source(of input: Checkpoint) throws(FileError) -> JSONObject? {
        guard input.format != .gguf else { return nil }
        let path = FileSystem.join(ModelDirectory.of(input), name)
        guard FileSystem.exists(path) else { return nil }
        do throws(ModelConfigError) { return try ModelLoader.readObject(path) } catch { throw FileError(path: path, problem: error) }
    }

    /// `quantization`: mlx-lm's, written under both of its keys (as mlx-lm writes them); without
    /// it, an input's own mlx-lm quantization is left out (the weights are written dequantized).
    static func text(
        source: JSONObject?, described: JSONObject, layout: NamingLayout, dtype: DType?, quantization: MLXQuantization? = nil
    ) -> String {
        guard var config = source else {
            var config = described
            if let name = dtype?.torchName { config.set("dtype", .string(name)) }
            withQuantization(&config, quantization)
            return JSONValue.object(config).serialized(.memberPerLine) + "\n"
        }
        for key in layout.configKeysReadersNeed { if let value = described[key] { config.set(key, value) } }
        if let dtype { withDType(&config, dtype) }
        withQuantization(&config, quantization)
        return JSONValue.object(config).serialized(.pythonIndented) + "\n"
    }

    static func withQuantization(_ config: inout JSONObject, _ quantization: MLXQuantization?) {
        if (try? MLXQuantization.read(config)) != nil {
            config = config.removing(["quantization", "quantization_config"])
        }
        guard let quantization else { return }
        config.set("quantization", quantization.configJSON)
        config.set("quantization_config", quantization.configJSON)
    }

    /// The source config with its dtype changed (`convert --dtype` without a layout change).
    static func text(source: JSONObject, dtype: DType) -> String {
        var config = source
        withDType(&config, dtype)
        return JSONValue.object(config).serialized(.pythonIndented) + "\n"
    }

    static func withDType(_ config: inout JSONObject, _ dtype: DType) {
        guard let name = dtype.torchName else { return }
        if config["dtype"] != nil || config["torch_dtype"] == nil { config.set("dtype", .string(name)) }
        if config["torch_dtype"] != nil { config.set("torch_dtype", .string(name)) }
    }

    /// The dtype most of the weights' bytes are in.
    static func bulkDType(_ tensors: [NamedTensor]) -> DType? {
        var bytes: [DType: Int] = [:]
        for tensor in tensors where tensor.dtype.isFloatingPoint {
            bytes[tensor.dtype, default: 0] += tensor.shape.reduce(1, *) * tensor.dtype.bits
        }
        return bytes.max { $0.value < $1.value }?.key
    }
}
