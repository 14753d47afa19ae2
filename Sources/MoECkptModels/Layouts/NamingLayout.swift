import MoECkptFormats

/// How a model description is stored beside the weights.
public enum DescriptionFile: String, Sendable {
    /// transformers' config.json (also mlx-lm's, and the seed modules').
    case configJSON = "config.json"
    /// Mistral's params.json.
    case mistralParams = "params.json"
    /// llama.cpp's key/values, as strings in the safetensors `__metadata__`.
    case ggufMetadata = "__metadata__"
}

/// One row of a layout table: a stored tensor name and the canonical tensor(s) it holds.
public struct LayoutEntry: Sendable {
    public enum Transform: Sendable, Equatable {
        /// The stored tensor is the canonical tensor.
        case identity
        /// The stored name has `{xid}`: one tensor per expert, stacked into the canonical tensor.
        case perExpert
        /// One stored tensor [experts, rows1 + rows2 + ..., in] holding several canonical tensors
        /// side by side for each expert (transformers 5's `gate_up_proj`).
        case fusedPerExpert
        /// One stored matrix [rows1 + rows2 + ..., in] holding several canonical matrices one
        /// after the other (GraniteMoE's shared `input_linear`: gate rows, then up rows).
        case fusedRows
        /// One stored matrix [heads * (rows1 + rows2 + ...), in] holding, head by head, rows1 rows
        /// of one canonical [heads, rows1, in], then rows2 of the next (DeepSeek's `kv_b_proj`:
        /// each head's key rows, then its value rows).
        case fusedPerHead
        /// One stored tensor [..., rows, parts * columns] whose columns are dealt round-robin to
        /// the canonical tensors, each transposed to [..., columns, rows] when `transposed`
        /// (gpt-oss's `gate_up_proj`, `x @ W` with gate and up columns interleaved; one part: a
        /// plain transpose). Computed when first read (`ColumnDeal`).
        case dealtColumns(transposed: Bool)
        /// Query/key rows of each head in interleaved rotary order (Mistral, llama.cpp) rather
        /// than transformers' rotate-half order: pairs (2i, 2i+1) instead of (i, i + d/2).
        case rotaryInterleaved
    }

    public let stored: NamePattern
    public let canonical: [NamePattern]
    public let transform: Transform

    public init(_ stored: String, _ canonical: String, _ transform: Transform = .identity) {
        self.stored = NamePattern(stored)
        self.canonical = [NamePattern(canonical)]
        self.transform = transform
    }

    public init(_ stored: String, fused canonical: [String]) {
        self.stored = NamePattern(stored)
        self.canonical = canonical.map(NamePattern.init)
        self.transform = .fusedPerExpert
    }

    public init(_ stored: String, fusedPerHead canonical: [String]) {
        self.stored = NamePattern(stored)
        self.canonical = canonical.map(NamePattern.init)
        self.transform = .fusedPerHead
    }

    public init(_ stored: String, dealtColumns canonical: [String], transposed: Bool) {
        self.stored = NamePattern(stored)
        self.canonical = canonical.map(NamePattern.init)
        self.transform = .dealtColumns(transposed: transposed)
    }

    public init(_ stored: String, fusedRows canonical: [String]) {
        self.stored = NamePattern(stored)
        self.canonical = canonical.map(NamePattern.init)
        self.transform = .fusedRows
    }
}

/// A naming layout's name, the `--names` value (`hf`, `mistral`, `canonical`, ...).
public struct LayoutKey: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { rawValue = value }

    public var description: String { rawValue }

    /// moeckpt's own names, those of `Architecture.canonicalTensors`.
    public static let canonical: LayoutKey = "canonical"
}

/// The names one tool gives a model's tensors, as a table (like gguf-py's tensor_mapping).
public struct NamingLayout: Sendable {
    /// The `--names` value.
    public let key: LayoutKey
    public let title: String
    public let entries: [LayoutEntry]
    public let description: DescriptionFile
    /// Data files are `<stem>.safetensors`, or `<stem>-0000i-of-0000N.safetensors` when sharded.
    public let fileStem: String
    /// Stored tensors that carry nothing (old checkpoints' rotary `inv_freq` buffers).
    public let ignored: [NamePattern]
    /// Its readers have no tied embeddings (mistral-inference loads `output.weight` strictly): a
    /// tied model's embedding is written as the head too, and its description says untied.
    public let writesTiedHead: Bool

    public init(
        key: LayoutKey, title: String, entries: [LayoutEntry], description: DescriptionFile = .configJSON,
        fileStem: String = "model", ignored: [String] = [], writesTiedHead: Bool = false
    ) {
        self.key = key
        self.title = title
        self.entries = entries
        self.description = description
        self.fileStem = fileStem
        self.ignored = ignored.map(NamePattern.init)
        self.writesTiedHead = writesTiedHead
    }

    /// config.json keys this layout's readers need in the form moeckpt writes them, whatever the
    /// source config says: mlx-lm's model arguments read `rope_theta` and `rope_scaling` at the top
    /// level, where transformers 5 writes `rope_parameters`.
    public var configKeysReadersNeed: [String] {
        let table: [LayoutKey: [String]] = ["mlx": ["rope_theta", "rope_scaling"]]
        return table[key] ?? []
    }

    /// moeckpt's own names (those of `Architecture.canonicalTensors`), as an identity table built
    /// from another layout's canonical column.
    public static func canonical(from layout: NamingLayout) -> NamingLayout {
        var seen = Set<String>()
        let templates = layout.entries.flatMap(\.canonical).map(\.template).filter { seen.insert($0).inserted }
        return NamingLayout(
            key: .canonical, title: "moeckpt canonical (experts stacked)",
            entries: templates.map { LayoutEntry($0, $0) })
    }

    /// How many of these names the layout's table accounts for. A name that starts with none of
    /// the table's leading literals is passed over without trying each pattern.
    public func matchCount(_ names: some Sequence<String>) -> Int {
        let prefixes = Array(Set(entries.map(\.stored.leadingLiteral)))
        let anything = prefixes.contains { $0.isEmpty }
        return names.reduce(0) { count, name in
            guard
                anything
                    || name.utf8.withContiguousStorageIfAvailable({ bytes in
                        prefixes.contains { $0.count <= bytes.count && zip($0, bytes).allSatisfy { $0 == $1 } }
                    }) != false
            else { return count }
            return count + (entries.contains { $0.stored.match(name) != nil } ? 1 : 0)
        }
    }

    /// The layout whose table accounts for the most names (ties go to the earlier layout).
    public static func detect(_ names: [String], among layouts: [NamingLayout]) -> NamingLayout? {
        var best: (layout: NamingLayout, count: Int)?
        for layout in layouts {
            let count = layout.matchCount(names)
            if count > 0 && count > (best?.count ?? 0) { best = (layout, count) }
        }
        return best?.layout
    }
}
