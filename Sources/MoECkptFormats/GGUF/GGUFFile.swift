import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// Reads GGUF files (llama.cpp's format): maps the file, validates the header (`GGUFHeader`) and
/// returns tensors that point into the mapping, shapes outermost first. Scalar key/values become
/// the checkpoint's metadata as text (so llama.cpp's keys describe the model); every key/value,
/// arrays included, stays typed in `Checkpoint.ggufKeyValues`.
public enum GGUFFile {
    /// The extension, or the magic at offset 0.
    public static func isGGUF(_ path: String) -> Bool {
        if path.hasSuffix(".gguf") { return true }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var head = [UInt8](repeating: 0, count: 4)
        return pread(fd, &head, 4, 0) == 4 && head == GGUFHeader.magic
    }

    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        try open(try FileMapping(path: path))
    }

    /// Reads a file already mapped (or copied into memory).
    public static func open(_ mapping: FileMapping) throws(FileError) -> Checkpoint {
        let path = mapping.path
        do throws(GGUFError) {
            let header = try GGUFHeader.parse(mapping.bytes)
            var tensors: [StoredTensor] = []
            for info in header.tensors {
                guard let dtype = info.type.dtype else { throw GGUFError.unsupportedType(tensor: info.name, type: info.type.name) }
                tensors.append(
                    StoredTensor(
                        name: info.name, dtype: dtype, shape: info.shape, byteCount: info.byteCount, storage: mapping,
                        offset: header.dataStart + info.offset))
            }
            var metadata: [String: String] = [:]
            var arrays: [CheckpointAttribute] = []
            for (key, value) in header.keyValues {
                if let text = value.text {
                    metadata[key] = text
                } else if case .array(let type, let elements) = value {
                    // Tokenizer arrays run to 100,000s of entries: their size and first few.
                    let first = elements.prefix(3).compactMap(\.text).joined(separator: ", ")
                    let summary = "[\(elements.count) x \(type)\(elements.isEmpty ? "" : ": " + first)\(elements.count > 3 ? ", ..." : "")]"
                    arrays.append(CheckpointAttribute(object: "/", name: key, value: summary))
                }
            }
            return Checkpoint(
                path: path, format: .gguf, tensors: tensors, metadata: metadata, files: [path], attributes: arrays,
                gguf: GGUFContents(keyValues: header.keyValues, version: header.version, alignment: header.alignment))
        } catch {
            throw FileError(path: path, problem: error)
        }
    }
}

/// What a GGUF file holds besides its tensors: every key/value, typed and in file order.
public struct GGUFContents: Sendable {
    public let keyValues: [(key: String, value: GGUFValue)]
    public let version: Int
    public let alignment: Int
}
