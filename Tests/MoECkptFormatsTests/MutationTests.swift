import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkptFormats

/// Random corruptions of valid files: the reader must accept or refuse each one, never trap or hang.
struct MutationTests {
    @Test(arguments: [
        "safetensors/single_meta.safetensors", "safetensors/all_dtypes.safetensors",
        "safetensors/handmade_subbyte.safetensors", "safetensors/metadata_unicode.safetensors",
    ])
    func mutatedFilesAreAcceptedOrRefusedWithARule(file: String) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))))
        var random = SeededGenerator(seed: UInt64(file.utf8.count) &* 0x9E37_79B9)
        var refused = 0
        for _ in 0..<3000 {
            var bytes = original
            switch Int.random(in: 0..<4, using: &random) {
            case 0:  // flip bits in the header region
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<min(bytes.count, 8 + 400), using: &random)] ^= UInt8(
                        1 << Int.random(in: 0..<8, using: &random))
                }
            case 1:  // truncate
                bytes.removeLast(Int.random(in: 1...bytes.count, using: &random))
            case 2:  // replace a header byte with a JSON-significant character
                let specials = Array("{}[]\",:-0123456789eE. \\u".utf8)
                bytes[Int.random(in: 8..<min(bytes.count, 400), using: &random)] = specials.randomElement(using: &random)!
            default:  // random length prefix
                let length = UInt64.random(in: 0...UInt64(bytes.count + 16), using: &random)
                withUnsafeBytes(of: length.littleEndian) { for i in 0..<8 { bytes[i] = $0[i] } }
            }
            do {
                let header = try bytes.withUnsafeBytes { try SafetensorsHeader.parse($0) }
                // Accepted: then it really is consistent.
                #expect(header.entries.reduce(header.dataStart) { $0 + ($1.end - $1.begin) } == bytes.count)
            } catch {
                refused += 1
                let rule = (error as? SafetensorsError)?.identifier
                #expect(rule != nil)
            }
        }
        #expect(refused > 1000)
    }
}
