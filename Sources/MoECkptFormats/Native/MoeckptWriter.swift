import MoECkptTensors

/// Writes `.moeckpt` files in one streaming pass: the header is written with placeholder
/// checksums (fixed-width), the tensors follow on 64-byte boundaries while their CRC-32C is
/// computed, then the header is rewritten in place with the checksums and its own checksum.
public enum MoeckptWriter {
    /// What the header says about the model.
    public struct Description: Sendable {
        /// The model description (a config.json object).
        public var model: JSONObject?
        /// `canonical` when tensors carry canonical names, nil when they keep their own.
        public var layout: String?
        /// The layout the tensors came from, restored when converting back.
        public var sourceLayout: String?

        public init(model: JSONObject? = nil, layout: String? = nil, sourceLayout: String? = nil) {
            self.model = model
            self.layout = layout
            self.sourceLayout = sourceLayout
        }
    }

    /// Computes a running CRC-32C of what passes through to the file.
    final class ChecksummingSink: ByteSink {
        let file: OutputFile
        var crc: UInt32 = 0
        private(set) var bytesWritten = 0
        init(_ file: OutputFile) { self.file = file }
        func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
            crc = CRC32C.checksum(bytes, continuing: crc)
            try file.write(bytes)
            bytesWritten += bytes.count
        }
    }

    public static func write(
        _ tensors: [TensorToWrite], metadata: [String: String], description: Description,
        to file: OutputFile
    ) throws(FileError) {
        var offsets: [Int] = []
        var end = 0
        for tensor in tensors {
            let offset = MoeckptLayout.alignUp(end, MoeckptLayout.tensorAlignment)
            offsets.append(offset)
            end = offset + tensor.byteCount
        }
        var checksums = [UInt32](repeating: 0, count: tensors.count)
        func header() -> [UInt8] {
            let entries: [JSONValue] = tensors.enumerated().map { i, tensor in
                .object(
                    JSONObject([
                        ("name", .string(tensor.name)), ("dtype", .string(tensor.dtype.name)),
                        ("shape", .array(tensor.shape.map { .number(String($0)) })),
                        ("offset", .number(String(offsets[i]))), ("length", .number(String(tensor.byteCount))),
                        ("crc32c", .string(CRC32C.hex(checksums[i]))),
                    ]))
            }
            var fields: [(String, JSONValue)] = [
                ("format", .string("moeckpt")),
                ("version", .array([.number(String(MoeckptLayout.majorVersion)), .number(String(MoeckptLayout.minorVersion))])),
                ("checksum", .string("crc32c")),
            ]
            if let model = description.model { fields.append(("model", .object(model))) }
            if let layout = description.layout { fields.append(("layout", .string(layout))) }
            if let source = description.sourceLayout { fields.append(("source_layout", .string(source))) }
            fields.append(("metadata", .object(JSONObject(metadata.keys.sorted().map { ($0, .string(metadata[$0]!)) }))))
            // data_offset depends on the header's length, which these two fields are part of:
            // write them with a fixed width so the length is known before they are.
            let placeholderEnd =
                MoeckptLayout.preambleBytes
                + JSONValue.object(
                    JSONObject(
                        fields + [
                            ("data_offset", .number(padded(0))), ("data_length", .number(padded(end))), ("tensors", .array(entries)),
                        ])
                ).serialized.utf8.count
            let dataOffset = MoeckptLayout.alignUp(placeholderEnd, MoeckptLayout.dataAlignment)
            fields += [("data_offset", .number(padded(dataOffset))), ("data_length", .number(padded(end))), ("tensors", .array(entries))]
            return Array(JSONValue.object(JSONObject(fields)).serialized.utf8)
        }
        let draft = header()
        let dataOffset = MoeckptLayout.alignUp(MoeckptLayout.preambleBytes + draft.count, MoeckptLayout.dataAlignment)
        try file.write(preamble(headerLength: draft.count, checksum: 0))
        try file.write(draft)
        try file.write([UInt8](repeating: 0, count: dataOffset - MoeckptLayout.preambleBytes - draft.count))

        let sink = ChecksummingSink(file)
        for (i, tensor) in tensors.enumerated() {
            try sink.write([UInt8](repeating: 0, count: offsets[i] - sink.bytesWritten))  // zero padding to 64 bytes
            sink.crc = 0
            let before = sink.bytesWritten
            try tensor.produce(sink)
            guard sink.bytesWritten - before == tensor.byteCount else {
                throw FileError(path: file.path, problem: WriterInconsistency(tensor: tensor.name))
            }
            checksums[i] = sink.crc
        }
        let final = header()
        guard final.count == draft.count else { throw FileError(path: file.path, problem: WriterInconsistency(tensor: "header")) }
        let draftPreamble = preamble(headerLength: final.count, checksum: 0)
        var crc = draftPreamble.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<MoeckptLayout.checksummedPreambleBytes]))
        }
        final.withUnsafeBytes { crc = CRC32C.checksum($0, continuing: crc) }
        try file.overwrite(preamble(headerLength: final.count, checksum: crc), at: 0)
        try file.overwrite(final, at: MoeckptLayout.preambleBytes)
    }

    /// Magic, version, flags, header length, header checksum, reserved: 32 bytes, little-endian.
    static func preamble(headerLength: Int, checksum: UInt32) -> [UInt8] {
        var bytes = MoeckptLayout.magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        append(MoeckptLayout.majorVersion)
        append(MoeckptLayout.minorVersion)
        append(UInt32(0))
        append(UInt64(headerLength))
        append(checksum)
        append(UInt32(0))
        return bytes
    }

    /// Integers written with 20 digits (leading zeros are not JSON: spaces before the value are).
    static func padded(_ value: Int) -> String {
        let digits = String(value)
        return String(repeating: " ", count: 20 - digits.count) + digits
    }
}
