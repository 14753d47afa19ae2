import MoECkptFormats
import MoECkptTensors

/// mlx-lm's quantization of a checkpoint, from config.json's `quantization` (or its copy
/// `quantization_config`): `{"group_size": 64, "bits": 4, "mode": "affine"}`, plus per-module
/// overrides under the module's path (`"model.layers.0.mlp.gate": {"group_size": 64, "bits": 8}`,
/// or `false` for a module left in float). A quantized module `P` stores `P.weight` as U32 words
/// of packed codes, `P.scales` and (affine) `P.biases`, one per group of `group_size` inputs.
public struct MLXQuantization: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        case affine, mxfp4, mxfp8, nvfp4
    }

    public struct Parameters: Sendable, Equatable, CustomStringConvertible {
        public var mode: Mode
        public var bits: Int
        public var groupSize: Int

        public init(mode: Mode = .affine, bits: Int, groupSize: Int) {
            self.mode = mode
            self.bits = bits
            self.groupSize = groupSize
        }

        public var description: String {
            mode == .affine ? "affine, \(bits) bits, groups of \(groupSize)" : "\(mode.rawValue), groups of \(groupSize)"
        }

        /// `affine:BITS[:GROUP]` (group 64 by default, as mlx-lm's), or a microscaling mode's
        /// name (`mxfp4`, `mxfp8`, `nvfp4`) with its one bit width and group size.
        public init?(argument: String) {
            let parts = argument.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let mode = Mode(rawValue: parts[0]) else { return nil }
            let numbers = parts.dropFirst().map { Int($0) }
            guard !numbers.contains(nil) else { return nil }
            let defaults: (bits: Int, group: Int) =
                switch mode {
                case .affine: (4, 64)
                case .mxfp4: (4, 32)
                case .mxfp8: (8, 32)
                case .nvfp4: (4, 16)
                }
            let bits = numbers.count > 0 ? numbers[0]! : defaults.bits
            let group = numbers.count > 1 ? numbers[1]! : defaults.group
            guard numbers.count <= 2, let valid = MLXQuantization.validated(mode: mode, bits: bits, groupSize: group) else { return nil }
            self = valid
        }
    }

    public var defaults: Parameters
    /// Module paths with their own parameters, or nil for a module left in float.
    public var overrides: [String: Parameters?]

    public init(defaults: Parameters, overrides: [String: Parameters?] = [:]) {
        self.defaults = defaults
        self.overrides = overrides
    }

    /// The parameters module `path` was quantized with (nil: left in float).
    public func parameters(forModule path: String) -> Parameters? {
        if let override = overrides[path] { return override }
        return defaults
    }

    /// config.json's quantization, nil when it has none. `quantization_config` is taken only
    /// when it is mlx-lm's (bits and a group size, no `quant_method`).
    public static func read(_ config: JSONObject) throws(ModelConfigError) -> MLXQuantization? {
        let key: String
        if case .object? = config["quantization"] {
            key = "quantization"
        } else if case .object(let other)? = config["quantization_config"], other["quant_method"] == nil, other["bits"] != nil {
            key = "quantization_config"
        } else {
            return nil
        }
        guard case .object(let object)? = config[key] else { return nil }
        var problems: [String] = []
        // A module's own entry without "mode" is affine, whatever the default: mlx-lm's
        // `to_quantized` defaults to it (Qwen3-MoE's 8-bit router in an mxfp4 model).
        func parameters(_ object: JSONObject, at path: String, inheriting base: Parameters?) -> Parameters? {
            var mode = Mode.affine
            if let value = object["mode"] {
                guard case .string(let text) = value, let known = Mode(rawValue: text) else {
                    problems.append("\(path).mode must be one of \(Mode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                    return nil
                }
                mode = known
            }
            let bits = object["bits"]?.nonNegativeInt ?? base?.bits
            let groupSize = object["group_size"]?.nonNegativeInt ?? base?.groupSize
            guard let bits, let groupSize, let valid = Self.validated(mode: mode, bits: bits, groupSize: groupSize) else {
                problems.append(
                    "\(path) must have bits \(Self.affineBits.map(String.init).joined(separator: ", ")) and group_size 32, 64 or 128 (affine), or a "
                        + "microscaling mode's own (mxfp4 and mxfp8: bits 4 and 8, group 32; nvfp4: bits 4, group 16)")
                return nil
            }
            return valid
        }
        guard let defaults = parameters(object, at: key, inheriting: nil) else { throw .problems(problems) }
        var overrides: [String: Parameters?] = [:]
        for (module, value) in object.entries where !["group_size", "bits", "mode"].contains(module) {
            switch value {
            case .bool(false): overrides[module] = .some(nil)
            case .bool(true): overrides[module] = defaults
            case .object(let own): overrides[module] = parameters(own, at: "\(key).\(module)", inheriting: defaults)
            default: problems.append("\(key).\(module) must be an object or a boolean")
            }
        }
        guard problems.isEmpty else { throw .problems(problems) }
        return MLXQuantization(defaults: defaults, overrides: overrides)
    }

    static let affineBits = [1, 2, 3, 4, 5, 6, 8]

    static func validated(mode: Mode, bits: Int, groupSize: Int) -> Parameters? {
        switch mode {
        case .affine: affineBits.contains(bits) && [32, 64, 128].contains(groupSize) ? Parameters(bits: bits, groupSize: groupSize) : nil
        case .mxfp4: bits == 4 && groupSize == 32 ? Parameters(mode: mode, bits: 4, groupSize: 32) : nil
        case .mxfp8: bits == 8 && groupSize == 32 ? Parameters(mode: mode, bits: 8, groupSize: 32) : nil
        case .nvfp4: bits == 4 && groupSize == 16 ? Parameters(mode: mode, bits: 4, groupSize: 16) : nil
        }
    }
}

extension MLXQuantization {
    /// Suffixes of a quantized module's tensors besides its packed `weight`.
    static let scalesSuffix = ".scales"
    static let biasesSuffix = ".biases"

    /// The stored tensors with each quantized module's weight replaced by its F32 values (scale
    /// q + bias, computed when first read), and its scales and biases removed; the problems of
    /// any that cannot be dequantized.
    func dequantize(_ stored: [NamedTensor]) -> (tensors: [NamedTensor], problems: [String]) {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var problems: [String] = []
        var out: [NamedTensor] = []
        var consumed = Set<String>()
        for tensor in stored where tensor.name.hasSuffix(".weight") {
            let module = String(tensor.name.dropLast(".weight".count))
            guard let scales = byName[module + Self.scalesSuffix] else { continue }
            consumed.formUnion([tensor.name, scales.name, module + Self.biasesSuffix])
            guard let parameters = parameters(forModule: module) else {
                problems.append("\(module) has scales, but config.json's quantization leaves it unquantized")
                continue
            }
            do throws(QuantizationError) {
                out.append(try Self.dequantize(tensor, scales: scales, biases: byName[module + Self.biasesSuffix], parameters))
            } catch {
                problems.append(error.description)
            }
        }
        return (stored.filter { !consumed.contains($0.name) } + out, problems)
    }

    struct QuantizationError: Error, CustomStringConvertible {
        let description: String
    }

    static func dequantize(
        _ weight: NamedTensor, scales: NamedTensor, biases: NamedTensor?, _ parameters: Parameters
    ) throws(QuantizationError) -> NamedTensor {
        let (bits, group, mode) = (parameters.bits, parameters.groupSize, parameters.mode)
        guard weight.dtype == .u32, let packed = weight.shape.last, weight.shape.count >= 2 else {
            throw QuantizationError(description: "\(weight.name) is \(weight.dtype.name) \(weight.shape), not U32-packed codes")
        }
        // Whole codes per row only: a row's bytes must be its codes' exactly (a hostile shape could
        // otherwise make more rows of fewer bytes than the output holds).
        guard (packed * 32) % bits == 0 else {
            throw QuantizationError(description: "\(weight.name): \(packed) words a row do not hold whole \(bits)-bit codes")
        }
        let columns = packed * 32 / bits
        let shape = Array(weight.shape.dropLast() + [columns])
        let groupShape = Array(weight.shape.dropLast() + [columns / group])
        let expected = "[\(groupShape.map(String.init).joined(separator: ", "))] for \(parameters)"
        // Affine: float scales and biases; the microscaling modes: U8 scales (E8M0, or E4M3 for nvfp4), no biases.
        let sides = mode == .affine ? [scales] + (biases.map { [$0] } ?? []) : [scales]
        guard mode != .affine || biases != nil else { throw QuantizationError(description: "\(weight.name): affine codes without biases") }
        for side in sides {
            let typed = mode == .affine ? Cast.canCast(from: side.dtype, to: .f32) : side.dtype == .u8
            guard side.shape == groupShape, typed else {
                throw QuantizationError(description: "\(side.name) is \(side.dtype.name) \(side.shape), expected \(expected)")
            }
        }
        guard columns % group == 0, let elements = Checked(shape.reduce(1, *)).value, let bytes = (Checked(elements) * 4).value else {
            throw QuantizationError(description: "\(weight.name): \(columns) columns are not whole groups of \(group)")
        }
        let groups = groupShape.reduce(1, *)
        let codes = MLXCodes(bits: bits, columns: columns, groupSize: group, mode: mode)
        let (scaleType, biasType) = (scales.dtype, biases?.dtype ?? .f32)
        let origin = MLXQuantizedMatrix(
            parameters: parameters, rows: shape.dropLast().reduce(1, *), columns: columns, codes: weight.rope, scales: scales.rope,
            biases: biases?.rope, scaleType: scales.dtype)
        let storage = DerivedStorage(name: weight.name, byteCount: bytes, sources: sides.map(\.rope) + [weight.rope], origin: origin) {
            sources, out in
            var scale = [Float](repeating: 0, count: groups)
            var bias = [Float](repeating: 0, count: mode == .affine ? groups : 0)
            if mode == .affine {
                scale.withUnsafeMutableBytes {
                    try? Cast.cast(sources[0].baseAddress!, from: scaleType, into: $0.baseAddress!, as: .f32, count: groups)
                }
                bias.withUnsafeMutableBytes {
                    try? Cast.cast(sources[1].baseAddress!, from: biasType, into: $0.baseAddress!, as: .f32, count: groups)
                }
            } else {
                for g in 0..<groups { scale[g] = MLXCodes.microscale(sources[0][g], mode: mode) }
            }
            codes.dequantize(
                sources[sources.count - 1], scales: scale, biases: bias, into: out.baseAddress!.assumingMemoryBound(to: Float.self))
        }
        return NamedTensor(name: weight.name, dtype: .f32, shape: shape, rope: storage.rope)
    }
}

extension MLXQuantization.Mode {
    /// A microscaling group's scale from its U8 code, as MLX widens it (`MLXCodes.microscale`).
    public func scale(ofCode byte: UInt8) -> Float { MLXCodes.microscale(byte, mode: self) }
}

/// MLX's packed codes: each row of `columns` codes of `bits` bits is a little-endian bit stream
/// (code i in bits [i bits, (i + 1) bits)) of whole U32 words. The value is, in F32 as MLX's
/// dequantize computes it, (scale q) + bias for affine codes, the E2M1 or E4M3 value times the
/// group's scale for the microscaling modes (exact).
struct MLXCodes {
    let bits: Int
    let columns: Int
    let groupSize: Int
    let mode: MLXQuantization.Mode

    static let e2m1: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    static let e4m3 = Minifloat.of(.f8E4M3)!.table.map { Float(bitPattern: $0) }

    /// A microscaling group's scale: 2^(s - 127) for E8M0 (mxfp4, mxfp8), the E4M3 value for nvfp4.
    static func microscale(_ byte: UInt8, mode: MLXQuantization.Mode) -> Float {
        if mode == .nvfp4 { return e4m3[Int(byte)] }
        return byte == 0 ? Float(bitPattern: 0x0040_0000) : Float(bitPattern: UInt32(byte) << 23)
    }

    func code(_ row: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let bit = i * bits
        var word = UInt64(row.loadUnaligned(fromByteOffset: bit / 32 * 4, as: UInt32.self))
        if bit % 32 + bits > 32 { word |= UInt64(row.loadUnaligned(fromByteOffset: bit / 32 * 4 + 4, as: UInt32.self)) << 32 }
        return Int((word >> UInt64(bit % 32)) & ((1 << UInt64(bits)) - 1))
    }

    func dequantize(_ packed: UnsafeRawBufferPointer, scales: [Float], biases: [Float], into out: UnsafeMutablePointer<Float>) {
        let rowBytes = columns * bits / 8
        let rows = packed.count / max(rowBytes, 1)
        let groupsPerRow = columns / groupSize
        for r in 0..<rows {
            let row = UnsafeRawBufferPointer(rebasing: packed[(r * rowBytes)..<((r + 1) * rowBytes)])
            for c in 0..<columns {
                let g = r * groupsPerRow + c / groupSize
                let q = code(row, c)
                out[r * columns + c] =
                    switch mode {
                    case .affine: scales[g] * Float(q) + biases[g]
                    case .mxfp8: Self.e4m3[q] * scales[g]
                    case .mxfp4, .nvfp4: Self.e2m1[q] * scales[g]
                    }
            }
        }
    }
}

extension MLXQuantization {
    /// Why a checkpoint without a quantization in its config.json does not load, when its weights
    /// are MLX-quantized (U32 codes beside `.scales`): the bits and group size most of them have,
    /// told by their shapes against the description's row lengths.
    static func recognised(_ stored: [NamedTensor], _ architecture: any Architecture) -> String? {
        let byName = Dictionary(stored.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let triplets = stored.filter { $0.dtype == .u32 && $0.name.hasSuffix(".weight") }
        guard !triplets.isEmpty else { return nil }
        // The description's row lengths, unless it plans far more tensors than the checkpoint has
        // (a hostile description is never expanded: ModelLoader.scaleProblem).
        let planned = architecture.plannedScale?.tensors ?? .max
        let rowLengths = planned / 2 > 4 * stored.count + 1024 ? [] : Set(architecture.canonicalTensors.compactMap { $0.shape.last })
        var found: [String: Int] = [:]
        for tensor in triplets {
            let module = String(tensor.name.dropLast(".weight".count))
            guard let scales = byName[module + scalesSuffix], let packed = tensor.shape.last, let groups = scales.shape.last else {
                continue
            }
            let candidates = affineBits.flatMap { bits in
                [32, 64, 128].map { (bits: bits, group: $0) }.filter { packed * 32 == $0.bits * $0.group * groups }
            }
            let fitting = candidates.filter { rowLengths.contains($0.group * groups) }
            let mode = scales.dtype == .u8 ? "microscaled" : "affine"
            let label = (fitting.first ?? candidates.first).map { "\(mode), bits \($0.bits), group \($0.group)" } ?? mode
            found[label, default: 0] += 1
        }
        guard let (label, count) = found.max(by: { $0.value < $1.value }) else { return nil }
        return "the weights are MLX-quantized (\(label): \(count) modules with U32 codes and .scales), "
            + "but config.json has no \"quantization\" saying so"
    }
}

/// MLX codes and their groups' scales and biases as a checkpoint stores them: what a dequantized
/// weight was derived from (`DerivedStorage.origin`), which the kernels read in place instead.
public struct MLXQuantizedMatrix: Sendable {
    public let parameters: MLXQuantization.Parameters
    /// Rows of all the matrices (experts stacked), each of `columns` codes.
    public let rows: Int
    public let columns: Int
    public let codes: ByteRope
    public let scales: ByteRope
    public let biases: ByteRope?
    public let scaleType: DType

    public var groupsPerRow: Int { columns / parameters.groupSize }
}

extension NamedTensor {
    /// The parameters of the MLX quantization this tensor was dequantized from (nil: it was not).
    public var mlxQuantization: MLXQuantization.Parameters? {
        rope.pieces.lazy.compactMap { ($0.storage as? DerivedStorage)?.origin as? MLXQuantizedMatrix }.first?.parameters
    }
}

/// Which weights mlx-lm quantizes in a model of a family, and how: its model file's
/// `quant_predicate` and the modules it cannot quantize. Every other weight of two or more
/// dimensions whose rows are whole groups is quantized with the defaults.
public struct MLXQuantizationRules: Sendable {
    /// Modules (a suffix of their path's text) mlx-lm's predicate gives their own affine bits and groups.
    public var overrides: [(suffix: String, bits: Int, groupSize: Int)]
    /// Modules left in float (not quantizable layers in mlx-lm: DeepSeek-V3's `MoEGate`).
    public var unquantized: [String]

    public init(overrides: [(suffix: String, bits: Int, groupSize: Int)] = [], unquantized: [String] = []) {
        self.overrides = overrides
        self.unquantized = unquantized
    }

    /// mlx-lm's `quantize_model`: the parameters of each tensor quantized (by module path), and
    /// the quantization config.json records. The group test uses the default group size, as
    /// mlx-lm does, before any override.
    public func plan(
        _ tensors: [NamedTensor], defaults: MLXQuantization.Parameters
    ) -> (
        modules: [String: MLXQuantization.Parameters], quantization: MLXQuantization
    ) {
        var modules: [String: MLXQuantization.Parameters] = [:]
        var overridden: [String: MLXQuantization.Parameters?] = [:]
        for tensor in tensors where tensor.name.hasSuffix(".weight") && tensor.shape.count >= 2 && tensor.dtype.isFloatingPoint {
            let module = String(tensor.name.dropLast(".weight".count))
            guard let last = tensor.shape.last, last % defaults.groupSize == 0,
                !unquantized.contains(where: { module.hasSuffix($0) })
            else { continue }
            // Plain string suffixes, as mlx-lm's `path.endswith` ("mlp.down_proj" takes "switch_mlp.down_proj").
            if let rule = overrides.first(where: { module.hasSuffix($0.suffix) }) {
                let own = MLXQuantization.Parameters(bits: rule.bits, groupSize: rule.groupSize)
                modules[module] = own
                overridden[module] = own
            } else {
                modules[module] = defaults
            }
        }
        return (modules, MLXQuantization(defaults: defaults, overrides: overridden))
    }
}

extension MLXQuantization {
    /// config.json's entry, as mlx-lm writes it: the defaults, then each override in module
    /// order (`{"group_size", "bits"}`, no mode: mlx-lm's predicates give none).
    public var configJSON: JSONValue {
        var object = JSONObject()
        object.set("group_size", .number(String(defaults.groupSize)))
        object.set("bits", .number(String(defaults.bits)))
        object.set("mode", .string(defaults.mode.rawValue))
        for module in overrides.keys.sorted(by: naturalOrder) {
            guard let own = overrides[module] ?? nil else {
                object.set(module, .bool(false))
                continue
            }
            var entry = JSONObject()
            entry.set("group_size", .number(String(own.groupSize)))
            entry.set("bits", .number(String(own.bits)))
            object.set(module, .object(entry))
        }
        return .object(object)
    }
}
