/// A strict JSON reader for checkpoint headers and indexes.
///
/// Foundation's JSONSerialization silently keeps one of two duplicate keys; a header that names a
/// tensor twice must be refused, so moeckpt parses JSON itself. Numbers keep their text so that
/// 64-bit sizes and offsets are read exactly. Nesting is capped so hostile input cannot exhaust
/// the stack. (Not `indirect`: arrays and objects already live on the heap, and a box per value
/// would double the allocations of a large header.)
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value as a non-negative integer, if it is written as one and fits in `Int`.
    public var nonNegativeInt: Int? {
        guard case .number(let text) = self, !text.isEmpty,
            text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return Int(text)
    }

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A JSON object with its keys in file order; keys are unique (the parser refuses duplicates).
public struct JSONObject: Equatable, Sendable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []

    public init() {}

    mutating func append(_ key: String, _ value: JSONValue) {
        keys.append(key)
        values.append(value)
    }

    public subscript(key: String) -> JSONValue? {
        keys.firstIndex(of: key).map { values[$0] }
    }

    /// Sets `key` to `value`: in its place when present, else at the end.
    public mutating func set(_ key: String, _ value: JSONValue) {
        if let index = keys.firstIndex(of: key) { values[index] = value } else { append(key, value) }
    }

    public var entries: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }

    /// The object without these keys, the others in their order.
    public func removing(_ removed: Set<String>) -> JSONObject {
        var kept = JSONObject()
        for (key, value) in entries where !removed.contains(key) { kept.append(key, value) }
        return kept
    }
}

public enum JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    case syntax(String, offset: Int)
    case duplicateKey(String)
    case tooDeep(offset: Int)
    case notAnObject

    public var description: String {
        switch self {
        case .syntax(let what, let offset): "\(what) at byte \(offset)"
        case .duplicateKey(let key): "duplicate key \"\(key)\""
        case .tooDeep(let offset): "nesting deeper than \(JSONParser.maximumDepth) levels at byte \(offset)"
        case .notAnObject: "not a JSON object"
        }
    }
}

public struct JSONParser {
    public static let maximumDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0

    /// Parses exactly one JSON value; only whitespace may follow it.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.syntax("unexpected text after the JSON value") }
        return value
    }

    /// Parses a JSON object member by member, handing each to `body` and keeping none (a header
    /// of a million tensors never exists as one tree); duplicate keys are refused. Stops early,
    /// returning false, when `body` does.
    public static func forEachMember(
        of bytes: UnsafeRawBufferPointer,
        _ body: (String, JSONValue) -> Bool
    ) throws(JSONError) -> Bool {
        try forEachMember(
            of: bytes,
            parsing: { (key: String, parser: inout JSONParser) throws(JSONError) -> Bool in
                body(key, try parser.value())
            })
    }

    /// The same, with `body` reading each member's value from the parser itself (with `value()`,
    /// or a faster special-purpose reader such as `plainTensorEntry()`).
    public static func forEachMember(
        of bytes: UnsafeRawBufferPointer,
        parsing body: (String, inout JSONParser) throws(JSONError) -> Bool
    ) throws(JSONError) -> Bool {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        guard parser.current == UInt8(ascii: "{") else { throw .notAnObject }
        let finished = try parser.object(body)
        guard finished else { return false }
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.syntax("unexpected text after the JSON value") }
        return true
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        var copy = text
        let result = copy.withUTF8 { buffer in
            Result { () throws(JSONError) in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func syntax(_ what: String) -> JSONError { .syntax(what, offset: position) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw syntax("unexpected end of input") }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] {
            throw syntax("invalid literal")
        }
        position += count
    }

    /// A safetensors tensor entry in its plain form, read without building JSON values:
    /// `{"dtype": "...", "shape": [...], "data_offsets": [...]}` in any key order, each key once,
    /// strings without escapes, integers of at most 18 digits without sign, fraction or exponent,
    /// at most 64 of them. Anything else returns nil with the position unchanged, for `value()`
    /// to read (and report) in full.
    public struct PlainTensorEntry {
        public var dtype: String
        public var shape: [Int]
        public var offsets: [Int]
    }

    public mutating func plainTensorEntry() -> PlainTensorEntry? {
        let start = position
        guard let entry = readPlainTensorEntry() else { position = start; return nil }
        return entry
    }

    private mutating func readPlainTensorEntry() -> PlainTensorEntry? {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else { return nil }
        position += 1
        var dtype: String?, shape: [Int]?, offsets: [Int]?
        for field in 0..<3 {
            skipWhitespace()
            guard current == UInt8(ascii: "\""), let key = try? string() else { return nil }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { return nil }
            position += 1
            skipWhitespace()
            switch key {
            case "dtype":
                guard dtype == nil, current == UInt8(ascii: "\""), let text = try? string() else { return nil }
                dtype = text
            case "shape":
                guard shape == nil, let ints = plainIntegers() else { return nil }
                shape = ints
            case "data_offsets":
                guard offsets == nil, let ints = plainIntegers() else { return nil }
                offsets = ints
            default:
                return nil
            }
            skipWhitespace()
            if field < 2 {
                guard current == UInt8(ascii: ",") else { return nil }
                position += 1
            }
        }
        guard current == UInt8(ascii: "}"), let dtype, let shape, let offsets else { return nil }
        position += 1
        return PlainTensorEntry(dtype: dtype, shape: shape, offsets: offsets)
    }

    private mutating func plainIntegers() -> [Int]? {
        guard current == UInt8(ascii: "[") else { return nil }
        position += 1
        skipWhitespace()
        var values: [Int] = []
        if current == UInt8(ascii: "]") { position += 1; return values }
        while values.count < 64 {
            skipWhitespace()
            let start = position
            var value = 0
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), position - start < 18 {
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                position += 1
            }
            let length = position - start
            guard length > 0, length == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            values.append(value)
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return values
            default: return nil  // a fraction, an exponent, a 19th digit, or bad syntax
            }
        }
        return nil
    }

    public mutating func value() throws(JSONError) -> JSONValue {
        skipWhitespace()
        guard let byte = current else { throw syntax("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return .object(try object())
        case UInt8(ascii: "["): return .array(try array())
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw syntax("unexpected character")
        }
    }

    private mutating func enter() throws(JSONError) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw .tooDeep(offset: position) }
    }

    private mutating func object() throws(JSONError) -> JSONObject {
        var result = JSONObject()
        _ = try object { (key: String, parser: inout JSONParser) throws(JSONError) -> Bool in
            result.append(key, try parser.value())
            return true
        }
        return result
    }

    /// Reads an object, handing each key to `body`, which reads its value; false when `body`
    /// stopped it.
    private mutating func object(_ body: (String, inout JSONParser) throws(JSONError) -> Bool) throws(JSONError) -> Bool {
        try enter()
        defer { depth -= 1 }
        position += 1
        // Small objects (a tensor entry) check their few keys directly; a set past 16 keys.
        var keys: [String] = []
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return true }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw syntax("expected a string key") }
            let key = try string()
            if keys.count < 16 {
                guard !keys.contains(key) else { throw .duplicateKey(key) }
                keys.append(key)
                if keys.count == 16 {
                    // A large object (a header's tensor table): room for about one key per 64 bytes left.
                    seen.reserveCapacity(min((bytes.count - position) / 64, 1 << 22))
                    seen.formUnion(keys)
                }
            } else {
                guard seen.insert(key).inserted else { throw .duplicateKey(key) }
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw syntax("expected ':'") }
            position += 1
            guard try body(key, &self) else { return false }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return true
            default: throw syntax("expected ',' or '}'")
            }
        }
    }

    private mutating func array() throws(JSONError) -> [JSONValue] {
        try enter()
        defer { depth -= 1 }
        position += 1
        var result: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return result }
        while true {
            result.append(try value())
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return result
            default: throw syntax("expected ',' or ']'")
            }
        }
    }

    private mutating func digits() -> Int {
        let start = position
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
        return position - start
    }

    private mutating func number() throws(JSONError) -> String {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        if current == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            throw syntax("invalid number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw syntax("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw syntax("invalid number") }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw syntax("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntax("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func string() throws(JSONError) -> String {
        position += 1
        // The common case, a string without escapes, straight from the input bytes.
        var end = position
        var ascii = true
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 {
            ascii = ascii && bytes[end] < 0x80
            end += 1
        }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            let raw = UnsafeRawBufferPointer(rebasing: bytes[position..<end])
            // ASCII needs no validation; anything else must be valid UTF-8.
            guard let text = ascii ? String(decoding: raw, as: UTF8.self) : String(validating: raw, as: UTF8.self) else {
                throw syntax("invalid UTF-8 in string")
            }
            position = end + 1
            return text
        }
        var utf8: [UInt8] = []
        while true {
            guard let byte = current else { throw syntax("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: utf8, as: UTF8.self) else { throw syntax("invalid UTF-8 in string") }
                return text
            case UInt8(ascii: "\\"):
                guard let escape = current else { throw syntax("unterminated string") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw syntax("unpaired surrogate") }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw syntax("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw syntax("unpaired surrogate") }
                    utf8.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw syntax("invalid escape")
                }
            case 0..<0x20:
                throw syntax("control character in string")
            default:
                utf8.append(byte)
            }
        }
    }
}

/// How JSON text is laid out. moeckpt has one JSON writer, `JSONValue.serialized(_:)`, and the
/// styles of the files it writes.
public enum JSONStyle: Sendable {
    /// serde_json's compact text (safetensors and .moeckpt headers): no spaces.
    case compact
    /// One member per line, two spaces in; nested values on their member's line as Python's
    /// `json.dumps` writes them without indent (`{"a": 1, "b": 2}`): config.json, params.json.
    case memberPerLine
    /// Python's `json.dumps(value, indent=2)` with `ensure_ascii` (non-ASCII as `\u` escapes):
    /// transformers' index.json.
    case pythonIndented
}

extension JSONValue {
    /// Compact JSON text, object keys in their stored order.
    public var serialized: String { serialized(.compact) }

    /// The value as JSON text in `style`, object keys in their stored order (no final newline).
    public func serialized(_ style: JSONStyle) -> String {
        switch style {
        case .compact: layout(indent: nil, depth: 0, comma: ",", colon: ":", quote: JSONText.quoted)
        case .pythonIndented: layout(indent: 2, depth: 0, comma: ",", colon: ": ", quote: JSONText.quotedASCII)
        case .memberPerLine:
            if case .object(let object) = self, !object.keys.isEmpty {
                "{\n"
                    + object.entries.map { key, value in
                        "  " + JSONText.quoted(key) + ": "
                            + value.layout(
                                indent: nil, depth: 0, comma: ", ", colon: ": ",
                                quote: JSONText.quoted)
                    }.joined(separator: ",\n") + "\n}"
            } else {
                layout(indent: nil, depth: 0, comma: ", ", colon: ": ", quote: JSONText.quoted)
            }
        }
    }

    /// Items `comma`-separated, each on its own line `indent` spaces deeper when indenting.
    private func layout(indent: Int?, depth: Int, comma: String, colon: String, quote: (String) -> String) -> String {
        func items(_ texts: [String], _ open: String, _ close: String) -> String {
            guard !texts.isEmpty else { return open + close }
            guard let indent else { return open + texts.joined(separator: comma) + close }
            let inner = "\n" + String(repeating: " ", count: indent * (depth + 1))
            let outer = "\n" + String(repeating: " ", count: indent * depth)
            return open + inner + texts.joined(separator: comma + inner) + outer + close
        }
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return quote(text)
        case .array(let values):
            return items(
                values.map { $0.layout(indent: indent, depth: depth + 1, comma: comma, colon: colon, quote: quote) },
                "[", "]")
        case .object(let object):
            return items(
                object.entries.map { key, value in
                    quote(key) + colon + value.layout(indent: indent, depth: depth + 1, comma: comma, colon: colon, quote: quote)
                }, "{", "}")
        }
    }
}

extension JSONValue {
    public static func integer(_ value: Int) -> JSONValue { .number(String(value)) }

    /// A double as Python's json writes a float: integers keep a `.0`.
    public static func float(_ value: Double) -> JSONValue { .number(JSONText.pythonFloat(value)) }

    public static func integer(_ value: Int?) -> JSONValue { value.map(integer) ?? .null }
}

extension JSONObject {
    public init(_ entries: [(String, JSONValue)]) {
        self.init()
        for (key, value) in entries { append(key, value) }
    }
}

/// Writes JSON text the way serde_json does (compact, same string escapes), so headers moeckpt
/// writes match the reference writer's byte for byte.
public enum JSONText {
    /// A double as Python's json writes a float: integers keep a `.0`.
    public static func pythonFloat(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e16 { return String(Int(value)) + ".0" }
        return "\(value)"
    }

    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// As Python's `json.dumps` quotes by default: non-ASCII as `\uXXXX` escapes (UTF-16).
    public static func quotedASCII(_ text: String) -> String {
        var out = ""
        for unit in quoted(text).utf16 {
            if unit < 0x80 {
                out.unicodeScalars.append(Unicode.Scalar(UInt8(unit)))
            } else {
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out
    }
}
