import FuzzDriver
import MoECkpt

/// The model description inside a `.moeckpt` file: the input replaces the `model` object of a
/// sound tiny Mixtral (fixtures/hostile/native-sound.moeckpt, header checksum recomputed), then
/// the file is opened, its model loaded (scale checks, layouts) and inspected.
@_cdecl("FuzzNativeModel_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    guard let base = try? FileMapping(path: "fixtures/hostile/native-sound.moeckpt"),
        let sound = try? MoeckptFile.open(base), let model = sound.embedded?.description,
        let dataOffset = sound.checksums?.dataOffset
    else {
        print("FuzzNativeModel: run from the repository root (needs fixtures/hostile/native-sound.moeckpt)")
        return 2
    }
    let headerLength = Int(base.bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
    let header = String(decoding: base.bytes[32..<(32 + headerLength)], as: UTF8.self)
    let modelText = "\"model\":" + JSONValue.object(model).serialized
    guard header.contains(modelText),
        let offsetRange = header.range(of: "\"data_offset\":" + String(repeating: " ", count: 16) + "4096")
    else { return 2 }
    let data = Array(base.bytes[dataOffset...])
    return fuzz(argc, argv) { bytes in
        var text = header
        text.replaceSubrange(offsetRange, with: "\"data_offset\":DATAOFFSET_PLACEHOLDER")
        text = text.replacingOccurrences(of: modelText, with: "\"model\":" + String(decoding: bytes, as: UTF8.self))
        let length = text.utf8.count - "DATAOFFSET_PLACEHOLDER".utf8.count + 20
        let dataOffset = MoeckptLayout.alignUp(32 + length, MoeckptLayout.dataAlignment)
        let padded = String(repeating: " ", count: 20 - String(dataOffset).count) + String(dataOffset)
        let headerBytes = Array(text.replacingOccurrences(of: "DATAOFFSET_PLACEHOLDER", with: padded).utf8)
        var file = Array(base.bytes[0..<32])
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { for i in 0..<8 { file[16 + i] = $0[i] } }
        var crc = file[0..<24].withUnsafeBytes { CRC32C.checksum($0) }
        crc = headerBytes.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { file[24 + i] = $0[i] } }
        file += headerBytes + [UInt8](repeating: 0, count: dataOffset - 32 - headerBytes.count) + data
        let checkpoint = file.withUnsafeBytes { raw in try? MoeckptFile.open(FileMapping(copying: raw, path: "input.moeckpt")) }
        guard let checkpoint else { return }
        _ = try? ModelLoader.standard.load(checkpoint)
        _ = Inspector.report(checkpoint)
    }
}
