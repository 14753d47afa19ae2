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
                let offset = header.dataStart + info.offset
                if let dtype = info.type.dtype {
                    tensors.append(
                        StoredTensor(
                            name: info.name, dtype: dtype, shape: info.shape, byteCount: info.byteCount, storage: mapping, offset: offset))
                    continue
                }
                guard let widen = dequantizer(info.type) else { throw GGUFError.unsupportedType(tensor: info.name, type: info.type.name) }
                let blocks = ByteRope([BytePiece(storage: mapping, offset: offset, count: info.byteCount)])
                let count = info.shape.reduce(1, *)
                guard let bytes = (Checked(count) * 4).value else { throw GGUFError.sizeOverflow(tensor: info.name) }
                let values = DerivedStorage(name: path + ": " + info.name, byteCount: bytes, sources: [blocks]) { sources, out in
                    widen(sources[0].baseAddress!, count, out.baseAddress!.assumingMemoryBound(to: Float.self))
                }
                tensors.append(
                    StoredTensor(
                        name: info.name, dtype: .f32, shape: info.shape, byteCount: bytes, storage: values, offset: 0,
                        blocks: StoredBlocks(type: info.type, rope: blocks)))
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

extension GGUFFile {
    /// The block types moeckpt reads, as functions writing a block run's F32 values.
    static func dequantizer(_ type: GGMLType) -> (@Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void)? {
        switch type {
        case .q8_0: { GGMLBlocks.dequantizeQ8_0($0, count: $1, into: $2) }
        case .q4_0: { GGMLBlocks.dequantizeQ4_0($0, count: $1, into: $2) }
        case .q4_K: { GGMLBlocks.dequantizeQ4_K($0, count: $1, into: $2) }
        case .q6_K: { GGMLBlocks.dequantizeQ6_K($0, count: $1, into: $2) }
        case .mxfp4: { blocks, count, out in for i in 0..<count { out[i] = MXFP4Blocks.value(blocks, i) } }
        default: nil
        }
    }
}

/// What a GGUF file holds besides its tensors: every key/value, typed and in file order.
public struct GGUFContents: Sendable {
    public let keyValues: [(key: String, value: GGUFValue)]
    public let version: Int
    public let alignment: Int
}
