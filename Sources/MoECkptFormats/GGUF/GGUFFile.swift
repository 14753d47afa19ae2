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

    /// Opens a GGUF file; a part of a split model (`NAME-0000i-of-0000N.gguf`, `split.*` keys)
    /// opens the whole model from its first part.
    public static func open(_ path: String) throws(FileError) -> Checkpoint {
        let first = try FileMapping(path: path)
        let header: GGUFHeader
        do throws(GGUFError) { header = try GGUFHeader.parse(first.bytes) } catch { throw FileError(path: path, problem: error) }
        guard let count = header.splitCount, count > 1 else { return try open(first, header: header) }
        guard let parts = SplitName(path), parts.count == count else {
            throw FileError(path: path, problem: GGUFError.splitName(count: count))
        }
        var mappings: [(FileMapping, GGUFHeader)] = []
        for index in 0..<count {
            let partPath = parts.path(index)
            guard FileSystem.exists(partPath) else {
                throw FileError(path: partPath, problem: GGUFError.splitPartMissing(index + 1, of: count))
            }
            let mapping = index == parts.index ? first : try FileMapping(path: partPath)
            do throws(GGUFError) {
                let partHeader = index == parts.index ? header : try GGUFHeader.parse(mapping.bytes)
                guard partHeader.splitCount == count, partHeader.splitNumber == index else {
                    throw GGUFError.splitPartMismatch(expected: index, count: count)
                }
                mappings.append((mapping, partHeader))
            } catch {
                throw FileError(path: partPath, problem: error)
            }
        }
        var combined = try open(mappings[0].0, header: mappings[0].1)
        var names = Set(combined.tensors.map(\.name))
        for (mapping, partHeader) in mappings.dropFirst() {
            let part = try open(mapping, header: partHeader)
            for tensor in part.tensors where !names.insert(tensor.name).inserted {
                throw FileError(path: mapping.path, problem: GGUFError.duplicateTensor(tensor.name))
            }
            combined = Checkpoint(
                path: combined.path, format: .gguf, tensors: combined.tensors + part.tensors, metadata: combined.metadata,
                files: combined.files + [mapping.path], attributes: combined.attributes, gguf: combined.gguf)
        }
        if let total = mappings[0].1.splitTensorCount, total != combined.tensors.count {
            throw FileError(path: path, problem: GGUFError.splitTensorCount(expected: total, found: combined.tensors.count))
        }
        return combined
    }

    /// Reads a file already mapped (or copied into memory).
    public static func open(_ mapping: FileMapping) throws(FileError) -> Checkpoint {
        let header: GGUFHeader
        do throws(GGUFError) { header = try GGUFHeader.parse(mapping.bytes) } catch { throw FileError(path: mapping.path, problem: error) }
        return try open(mapping, header: header)
    }

    static func open(_ mapping: FileMapping, header: GGUFHeader) throws(FileError) -> Checkpoint {
        let path = mapping.path
        do throws(GGUFError) {
            var tensors: [StoredTensor] = []
            for info in header.tensors {
                let offset = header.dataStart + info.offset
                if let dtype = info.type.dtype {
                    tensors.append(
                        StoredTensor(
                            name: info.name, dtype: dtype, shape: info.shape, byteCount: info.byteCount, storage: mapping, offset: offset))
                    continue
                }
                guard let widen = info.type.dequantizer else { throw GGUFError.unsupportedType(tensor: info.name, type: info.type.name) }
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

/// `NAME-0000i-of-0000N.gguf`, the names `gguf-split` and the converter give a split model's parts.
struct SplitName {
    let stem: String
    let index: Int
    let count: Int

    init?(_ path: String) {
        guard path.hasSuffix(".gguf") else { return nil }
        let base = path.dropLast(5)
        let parts = base.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count >= 4, parts[parts.count - 2] == "of", parts[parts.count - 3].count == 5, parts[parts.count - 1].count == 5,
            let index = Int(parts[parts.count - 3]), let count = Int(parts[parts.count - 1]), index >= 1, index <= count
        else { return nil }
        stem = parts.dropLast(3).joined(separator: "-")
        self.index = index - 1
        self.count = count
    }

    func path(_ index: Int) -> String { GGUFFile.splitPartName(stem: stem, index: index, count: count) }
}

extension GGUFFile {
    /// `stem-0000i-of-0000N.gguf` for part `index` (from 0).
    public static func splitPartName(stem: String, index: Int, count: Int) -> String {
        func fiveDigits(_ n: Int) -> String { String(repeating: "0", count: max(0, 5 - String(n).count)) + String(n) }
        return "\(stem)-\(fiveDigits(index + 1))-of-\(fiveDigits(count)).gguf"
    }

}

/// What a GGUF file holds besides its tensors: every key/value, typed and in file order.
public struct GGUFContents: Sendable {
    public let keyValues: [(key: String, value: GGUFValue)]
    public let version: Int
    public let alignment: Int
}
