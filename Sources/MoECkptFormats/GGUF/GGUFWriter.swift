import MoECkptTensors

/// Writes GGUF v3 files laid out as the `gguf` package's GGUFWriter lays them out: header, the
/// key/values in the order given, the tensor infos in the order given with offsets computed up
/// front (each tensor's start a multiple of the alignment), zero padding to the alignment after
/// the infos and after every tensor. Tensors stream one at a time.
public enum GGUFWriter {
    public struct UnwritableType: Error, CustomStringConvertible, Sendable {
        public let tensor: String
        public let dtype: DType
        public var description: String {
            "\(tensor) is \(dtype.name), which has no ggml type (GGUF holds F32, F16, BF16, F64 and integers)"
        }
    }

    /// The header bytes (through the padding before the data) and the tensors' total padded size.
    public static func header(
        for tensors: [TensorToWrite], keyValues: [(key: String, value: GGUFValue)], alignment: Int = GGUFHeader.defaultAlignment
    ) throws(UnwritableType) -> [UInt8] {
        var out = Bytes()
        out.raw(GGUFHeader.magic)
        out.u32(3)
        out.u64(UInt64(tensors.count))
        out.u64(UInt64(keyValues.count))
        for (key, value) in keyValues {
            out.string(key)
            out.u32(value.type.rawValue)
            out.value(value)
        }
        var offset = 0
        for tensor in tensors {
            guard let type = tensor.blocks ?? GGMLType(tensor.dtype) else { throw UnwritableType(tensor: tensor.name, dtype: tensor.dtype) }
            out.string(tensor.name)
            let dimensions = tensor.shape.isEmpty ? [1] : tensor.shape.reversed()
            out.u32(UInt32(dimensions.count))
            for ne in dimensions { out.u64(UInt64(ne)) }
            out.u32(type.rawValue)
            out.u64(UInt64(offset))
            offset += padded(tensor.byteCount, alignment)
        }
        out.raw([UInt8](repeating: 0, count: padded(out.bytes.count, alignment) - out.bytes.count))
        return out.bytes
    }

    /// Tensors llama.cpp's converter writes in F32 whatever the output type: 1-D tensors, norms,
    /// the router (`ffn_gate_inp`) and biases (ggml's CPU kernels take them in F32).
    public static func staysF32(_ name: String, shape: [Int]) -> Bool {
        shape.count <= 1 || name.hasSuffix("_norm.weight") || name.contains("ffn_gate_inp") || !name.hasSuffix(".weight")
    }

    static func padded(_ count: Int, _ alignment: Int) -> Int { (count + alignment - 1) / alignment * alignment }

    /// Writes one GGUF file; returns the bytes of the tensors (without padding).
    @discardableResult
    public static func write(
        _ tensors: [TensorToWrite], keyValues: [(key: String, value: GGUFValue)], to file: OutputFile
    ) throws(FileError) -> Int {
        let alignment: Int
        if case .uint32(let a)? = keyValues.first(where: { $0.key == "general.alignment" })?.value {
            alignment = Int(a)
        } else {
            alignment = GGUFHeader.defaultAlignment
        }
        let bytes: [UInt8]
        do throws(UnwritableType) { bytes = try header(for: tensors, keyValues: keyValues, alignment: alignment) } catch {
            throw FileError(path: file.path, problem: error)
        }
        try file.write(bytes)
        var total = 0
        for tensor in tensors {
            try tensor.write(to: file)
            try file.write([UInt8](repeating: 0, count: padded(tensor.byteCount, alignment) - tensor.byteCount))
            total += tensor.byteCount
        }
        return total
    }

    /// Little-endian bytes.
    struct Bytes {
        var bytes: [UInt8] = []
        mutating func raw(_ more: [UInt8]) { bytes += more }
        mutating func scalar<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u32(_ v: UInt32) { scalar(v) }
        mutating func u64(_ v: UInt64) { scalar(v) }
        mutating func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            bytes += Array(s.utf8)
        }

        mutating func value(_ value: GGUFValue) {
            switch value {
            case .uint8(let v): scalar(v)
            case .int8(let v): scalar(v)
            case .uint16(let v): scalar(v)
            case .int16(let v): scalar(v)
            case .uint32(let v): scalar(v)
            case .int32(let v): scalar(v)
            case .float32(let v): scalar(v.bitPattern)
            case .bool(let v): scalar(UInt8(v ? 1 : 0))
            case .string(let v): string(v)
            case .uint64(let v): scalar(v)
            case .int64(let v): scalar(v)
            case .float64(let v): scalar(v.bitPattern)
            case .array(let elementType, let elements):
                u32(elementType.rawValue)
                u64(UInt64(elements.count))
                for element in elements { self.value(element) }
            }
        }
    }
}

/// The value type `gguf`'s GGUFWriter gives each llama.cpp key it has a method for (`add_*`), by
/// the key after `{arch}.`: what turns moeckpt's text descriptions into typed GGUF values.
public enum GGUFKeyTypes {
    static let table: [String: GGUFValueType] = {
        var table: [String: GGUFValueType] = [:]
        for key in [
            "block_count", "context_length", "embedding_length", "feed_forward_length", "vocab_size", "attention.head_count",
            "attention.head_count_kv", "attention.key_length", "attention.value_length", "attention.key_length_mla",
            "attention.value_length_mla", "attention.q_lora_rank", "attention.kv_lora_rank", "attention.sliding_window",
            "rope.dimension_count", "rope.scaling.original_context_length", "expert_count", "expert_used_count",
            "expert_shared_count", "expert_feed_forward_length", "expert_shared_feed_forward_length", "expert_gating_func",
            "expert_group_count", "expert_group_used_count", "leading_dense_block_count", "nextn_predict_layers",
        ] {
            table[key] = .uint32
        }
        for key in [
            "rope.freq_base", "attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon", "expert_weights_scale",
            "rope.scaling.factor", "rope.scaling.yarn_log_multiplier", "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow",
            "rope.scaling.attn_factor", "embedding_scale", "residual_scale", "attention.scale", "logit_scale", "attention.clamp_kqv",
        ] {
            table[key] = .float32
        }
        table["expert_weights_norm"] = .bool
        table["rope.scaling.type"] = .string
        return table
    }()

    public struct UnknownKey: Error, CustomStringConvertible, Sendable {
        public let key: String
        public let text: String
        public var description: String { "no GGUF value type is known for key \(key) (value \(text))" }
    }

    /// The `general.*` keys llama.cpp's converter adds to every model: its type, `file_type` (gguf-py's
    /// `LlamaFileType` of the bulk of the weights) and the quantization version.
    public static func generalKeyValues(weights: GGMLType?) -> [(key: String, value: GGUFValue)] {
        let fileTypes: [GGMLType: UInt32] = [.f32: 0, .f16: 1, .q4_0: 2, .q8_0: 7, .bf16: 32]
        var out: [(key: String, value: GGUFValue)] = [("general.type", .string("model"))]
        if let type = weights.flatMap({ fileTypes[$0] }) { out.append(("general.file_type", .uint32(type))) }
        out.append(("general.quantization_version", .uint32(2)))
        return out
    }

    /// `general.architecture` first, then the architecture's keys sorted, typed as gguf-py types
    /// them; a key it has no type for is an error (a value of the wrong type would misread).
    public static func keyValues(_ metadata: [String: String]) throws(UnknownKey) -> [(key: String, value: GGUFValue)] {
        guard let architecture = metadata["general.architecture"] else { return [] }
        var out: [(key: String, value: GGUFValue)] = [("general.architecture", .string(architecture))]
        for key in metadata.keys.sorted() where key.hasPrefix(architecture + ".") {
            let text = metadata[key]!
            let value: GGUFValue?
            switch table[String(key.dropFirst(architecture.count + 1))] {
            case .uint32?: value = UInt32(text).map(GGUFValue.uint32)
            case .float32?: value = Float(text).map(GGUFValue.float32)
            case .bool?: value = text == "true" ? .bool(true) : text == "false" ? .bool(false) : nil
            case .string?: value = .string(text)
            default: value = nil
            }
            guard let value else { throw UnknownKey(key: key, text: text) }
            out.append((key, value))
        }
        return out
    }
}
