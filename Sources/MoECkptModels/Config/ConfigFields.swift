import MoECkptFormats

/// Why a model description cannot be read. Every problem of a file is collected, so one message
/// lists them all.
public enum ModelConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case notJSON(String)
    case unreadable(String)
    case problems([String])
    case unknownModelType(String, known: [String])
    case noDescription

    public var description: String {
        switch self {
        case .notJSON(let why): "not a valid JSON object: \(why)"
        case .unreadable(let why): why
        case .problems(let list): list.joined(separator: "; ")
        case .unknownModelType(let type, let known):
            "model_type \"\(type)\" is not one moeckpt knows (\(known.joined(separator: ", ")))"
        case .noDescription:
            "no model description: expected config.json, params.json, or GGUF keys in the safetensors metadata (or give one with --config FILE)"
        }
    }
}

/// Reads typed fields of a JSON object, collecting every missing or mistyped field instead of
/// stopping at the first.
public struct ConfigFields {
    let object: JSONObject
    private(set) var problems: [String] = []

    public init(_ object: JSONObject) { self.object = object }

    public static func parse(_ text: UnsafeRawBufferPointer) throws(ModelConfigError) -> JSONObject {
        do {
            guard case .object(let object) = try JSONParser.parse(text) else { throw ModelConfigError.notJSON("not an object") }
            return object
        } catch let error as JSONError {
            throw .notJSON(error.description)
        } catch {
            throw .notJSON("not an object")
        }
    }

    /// The object a JSON text holds.
    public static func object(_ text: String) throws(ModelConfigError) -> JSONObject {
        var copy = text
        let result = copy.withUTF8 { buffer in
            Result { () throws(ModelConfigError) in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }

    /// The value at a dotted path (`moe.num_experts`), or nil when absent or null.
    public func value(_ path: String) -> JSONValue? {
        var current: JSONValue = .object(object)
        for key in path.split(separator: ".") {
            guard case .object(let inner) = current, let next = inner[String(key)] else { return nil }
            current = next
        }
        return current == .null ? nil : current
    }

    public mutating func optionalInt(_ path: String) -> Int? {
        guard let value = value(path) else { return nil }
        guard let int = value.nonNegativeInt else {
            problems.append("\(path) must be a non-negative integer")
            return nil
        }
        return int
    }

    public mutating func int(_ path: String) -> Int {
        guard value(path) != nil else { problems.append("\(path) is missing"); return 0 }
        return optionalInt(path) ?? 0
    }

    /// Sizes and counts above this are refused: no real model comes near, and a hostile config
    /// must not make moeckpt plan billions of tensors.
    public static let largestCount = 1 << 24

    /// A positive integer (sizes and counts), at most `largestCount`.
    public mutating func count(_ path: String) -> Int {
        let result = int(path)
        if value(path)?.nonNegativeInt == 0 { problems.append("\(path) must be positive") }
        if result > Self.largestCount {
            problems.append("\(path) = \(result) is larger than moeckpt accepts (\(Self.largestCount))")
            return 1
        }
        return result
    }

    /// A count written under one of several keys (transformers' `attribute_map` aliases: Qwen3-MoE's
    /// `num_experts` is saved as `num_local_experts` by transformers 5): the first present.
    public mutating func count(anyOf paths: [String]) -> Int {
        count(paths.first { value($0) != nil } ?? paths[0])
    }

    /// An optional size or count: positive and at most `largestCount` when present.
    public mutating func optionalCount(_ path: String, allowZero: Bool = false) -> Int? {
        guard let value = optionalInt(path) else { return nil }
        guard value <= Self.largestCount, allowZero || value > 0 else {
            problems.append("\(path) = \(value) must be \(allowZero ? "" : "positive and ")at most \(Self.largestCount)")
            return nil
        }
        return value
    }

    public mutating func optionalDouble(_ path: String) -> Double? {
        guard let value = value(path) else { return nil }
        guard case .number(let text) = value, let double = Double(text), double.isFinite else {
            problems.append("\(path) must be a number")
            return nil
        }
        return double
    }

    public mutating func double(_ path: String) -> Double {
        guard value(path) != nil else { problems.append("\(path) is missing"); return 0 }
        return optionalDouble(path) ?? 0
    }

    public mutating func optionalBool(_ path: String) -> Bool? {
        guard let value = value(path) else { return nil }
        guard case .bool(let bool) = value else { problems.append("\(path) must be true or false"); return nil }
        return bool
    }

    /// A list of layer indices or other counts (`mlp_only_layers`), each at most `largestCount`.
    public mutating func optionalCounts(_ path: String) -> [Int]? {
        guard let value = value(path) else { return nil }
        guard case .array(let items) = value, items.count <= Self.largestCount,
            let counts = Optional(items.compactMap(\.nonNegativeInt)), counts.count == items.count,
            counts.allSatisfy({ $0 <= Self.largestCount })
        else {
            problems.append("\(path) must be a list of non-negative integers")
            return nil
        }
        return counts
    }

    /// A list of strings (`layer_types`).
    public mutating func optionalStrings(_ path: String) -> [String]? {
        guard let value = value(path) else { return nil }
        guard case .array(let items) = value, items.count <= Self.largestCount else {
            problems.append("\(path) must be a list of strings")
            return nil
        }
        var strings: [String] = []
        for item in items {
            guard case .string(let text) = item else {
                problems.append("\(path) must be a list of strings")
                return nil
            }
            strings.append(text)
        }
        return strings
    }

    public mutating func optionalString(_ path: String) -> String? {
        guard let value = value(path) else { return nil }
        guard case .string(let text) = value else { problems.append("\(path) must be a string"); return nil }
        return text
    }

    /// One of a closed set of string values (`scoring_func`), or nil when absent.
    public mutating func optionalChoice<Choice: RawRepresentable & CaseIterable>(_ path: String, as _: Choice.Type) -> Choice?
    where Choice.RawValue == String {
        guard let text = optionalString(path) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            problems.append("\(path) must be one of \(Choice.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            return nil
        }
        return choice
    }

    /// The RoPE of a config: only the default rotary embedding is implemented, so any other type
    /// or scaling (linear, dynamic, yarn, longrope, llama3, ...) is refused by name, never ignored.
    /// transformers 4.x writes `rope_scaling` (null by default), 5.x `rope_parameters`.
    public mutating func requireDefaultRoPE(_ objects: [String]) {
        for path in objects {
            guard let value = value(path) else { continue }
            guard case .object(let fields) = value else { problems.append("\(path) must be an object"); continue }
            var type: String?
            for key in ["rope_type", "type"] {
                if case .string(let text)? = fields[key] { type = text; break }
            }
            guard let type else {
                if path != "rope_parameters" { problems.append("\(path) names no rope_type; moeckpt implements only the default RoPE") }
                continue
            }
            if type != "default" {
                problems.append("\(path) rope_type \"\(type)\" is not implemented by moeckpt (only the default RoPE)")
            }
        }
    }

    public func check() throws(ModelConfigError) {
        if !problems.isEmpty { throw .problems(problems) }
    }
}
