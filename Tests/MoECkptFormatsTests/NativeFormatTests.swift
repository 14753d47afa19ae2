import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// The `.moeckpt` format: round trips, integrity, strictness.
struct NativeFormatTests {
    @Test func crc32cMatchesTheStandardCheckValueAndTheBitwiseReference() {
        Array("123456789".utf8).withUnsafeBytes { #expect(CRC32C.checksum($0) == 0xE306_9283) }
        var state: UInt64 = 1
        let data = (0..<40_000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        data.withUnsafeBytes { all in
            for length in [0, 1, 7, 8, 9, 63, 4095, 4096, 12_287, 12_288, 12_289, 24_577, 40_000] {
                let part = UnsafeRawBufferPointer(rebasing: all[0..<length])
                #expect(CRC32C.checksum(part) == CRC32C.reference(part), "length \(length)")
            }
            // Continuing a checksum equals checksumming the concatenation.
            let (a, b) = (UnsafeRawBufferPointer(rebasing: all[0..<13_000]), UnsafeRawBufferPointer(rebasing: all[13_000...]))
            #expect(CRC32C.checksum(b, continuing: CRC32C.checksum(a)) == CRC32C.checksum(all))
        }
    }

    static func sameTensors(_ a: Checkpoint, _ b: Checkpoint) throws -> Bool {
        guard Set(a.tensors.map(\.name)) == Set(b.tensors.map(\.name)) else { return false }
        for tensor in a.tensors {
            let other = try #require(b.tensor(named: tensor.name))
            guard other.dtype == tensor.dtype, other.shape == tensor.shape,
                Array(try other.load()) == Array(try tensor.load())
            else { return false }
        }
        return true
    }

    @Test(arguments: [
        "safetensors/all_dtypes.safetensors", "safetensors/odd_shapes.safetensors",
        "safetensors/handmade_subbyte.safetensors", "safetensors/metadata_unicode.safetensors",
        "safetensors/tiny-mixtral-sharded", "models/layouts/hf", "models/layouts/mistral", "models/layouts/gguf",
        "models/layouts/hf-fused", "models/layouts/mlx", "models/tiny-mixtral-bf16", "models/tiny-mixtral-variant",
        "models/mixtral_block", "models/sparse_moe_shared", "models/switch_transformer_scaled",
    ])
    func everyFixtureRoundTripsBitExact(fixture: String) throws {
        let dir = try TemporaryDirectory()
        let native = dir.file("model.moeckpt")
        _ = try Converter.convert(Fixtures.path(fixture), to: native)
        let back = dir.file("back")
        _ = try Converter.convert(native, to: back)
        #expect(try Self.sameTensors(try ModelDirectory.open(Fixtures.path(fixture)), try ModelDirectory.open(back)))
        #expect(try ModelDirectory.open(native).verifyChecksums()!.problems.isEmpty)
    }

    @Test func aHuggingFaceCheckpointComesBackByteForByteWithItsConfig() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path("models/tiny-mixtral"), to: dir.file("m.moeckpt"))
        let native = try ModelDirectory.open(dir.file("m.moeckpt"))
        #expect(native.embedded?.layout == "canonical" && native.embedded?.sourceLayout == "hf")
        #expect(native.tensor(named: "layers.1.moe.down")?.shape == [4, 16, 32])
        #expect(
            native.tensors.allSatisfy { ($0.offset - native.checksums!.dataOffset) % 64 == 0 } && native.checksums!.dataOffset % 4096 == 0)
        _ = try Converter.convert(dir.file("m.moeckpt"), to: dir.file("back"))
        #expect(try fileBytes(dir.file("back/model.safetensors")) == fileBytes(Fixtures.path("models/tiny-mixtral/model.safetensors")))
        #expect(FileManager.default.fileExists(atPath: dir.file("back/config.json")))
    }

    @Test(arguments: [
        "models/tiny-mixtral", "models/mixtral-mha-top1", "models/layouts/gguf", "models/mixture_of_experts", "models/basic_moe",
    ])
    func aConvertedModelVerifiesWithTheSameOutputs(fixture: String) throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path(fixture), to: dir.file("m.moeckpt"))
        let report = try Verifier.verify(dir.file("m.moeckpt"), expected: Fixtures.path(fixture + "/expected.safetensors"))
        #expect(report.passed)
        let original = try Verifier.verify(Fixtures.path(fixture))
        #expect(report.comparisons.map(\.maxAbsoluteError) == original.comparisons.map(\.maxAbsoluteError))
    }

    /// Writes `bytes` to a file and reports what opening and checking it says.
    static func outcome(_ bytes: [UInt8], in dir: TemporaryDirectory) -> String? {
        let path = dir.file("mutant.moeckpt")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            let checkpoint = try MoeckptFile.open(path)
            return checkpoint.verifyChecksums()!.problems.first.map { "\($0)" }
        } catch {
            return error.description
        }
    }

    static func smallNativeFile(_ dir: TemporaryDirectory) throws -> [UInt8] {
        _ = try Converter.convert(Fixtures.path("safetensors/all_dtypes.safetensors"), to: dir.file("small.moeckpt"))
        return [UInt8](try fileBytes(dir.file("small.moeckpt")))
    }

    @Test func everySingleFlippedBitIsDetectedAndNamed() throws {
        let dir = try TemporaryDirectory()
        let original = try Self.smallNativeFile(dir)
        #expect(Self.outcome(original, in: dir) == nil)
        let checkpoint = try MoeckptFile.open(dir.file("small.moeckpt"))
        for position in 0..<original.count {
            var bytes = original
            bytes[position] ^= UInt8(1 << (position % 8))
            let message = Self.outcome(bytes, in: dir)
            #expect(message != nil, "a flip at byte \(position) went unnoticed")
            // Flips inside a tensor name that tensor.
            if let tensor = checkpoint.tensors.first(where: { ($0.offset..<($0.offset + $0.byteCount)).contains(position) }) {
                #expect(message?.contains("tensor \"\(tensor.name)\" checksum mismatch") == true, "byte \(position)")
            } else if position >= 32 && position < checkpoint.checksums!.dataOffset {
                #expect(message?.contains("header") == true || message?.contains("padding") == true, "byte \(position): \(message ?? "")")
            }
        }
    }

    @Test func truncatedFilesAndNewerVersionsAreRefusedByName() throws {
        let dir = try TemporaryDirectory()
        let original = try Self.smallNativeFile(dir)
        #expect(Self.outcome(Array(original.dropLast(10)), in: dir)?.contains("truncated or extended") == true)
        #expect(Self.outcome(Array(original.prefix(20)), in: dir)?.contains("shorter than the 32-byte preamble") == true)
        #expect(Self.outcome(Array(original.prefix(3000)), in: dir) != nil)
        // A version 2.0 file with a valid header checksum: refused, naming both versions.
        var newer = original
        newer[8] = 2
        let headerLength = Int(newer[16..<24].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var crc = newer[0..<24].withUnsafeBytes { CRC32C.checksum($0) }
        crc = newer[32..<(32 + headerLength)].withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { newer[24 + i] = $0[i] } }
        #expect(
            Self.outcome(newer, in: dir)?.hasSuffix(": format version 2.0 is newer than this moeckpt reads (1.x); update moeckpt") == true)
    }

    @Test func openingReadsNoTensorData() throws {
        let dir = try TemporaryDirectory()
        var bytes = try Self.smallNativeFile(dir)
        let checkpoint = try MoeckptFile.open(dir.file("small.moeckpt"))
        // Zero the whole data section: opening still succeeds (only the header is read).
        for i in checkpoint.checksums!.dataOffset..<bytes.count { bytes[i] = 0 }
        let path = dir.file("zeroed.moeckpt")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let zeroed = try MoeckptFile.open(path)
        #expect(zeroed.tensors.count == checkpoint.tensors.count)
        #expect(!zeroed.verifyChecksums()!.problems.isEmpty)
    }

    @Test func randomMutationsNeverCrash() throws {
        let dir = try TemporaryDirectory()
        let original = try Self.smallNativeFile(dir)
        var state: UInt64 = 0xDEAD_BEEF
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(max(bound, 1)))
        }
        var refused = 0
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + next(6)) {
                switch next(3) {
                case 0: bytes[next(bytes.count)] = UInt8(next(256))
                case 1 where bytes.count > 40:
                    let specials = Array("{}[]\":,0123456789 ".utf8)
                    bytes[32 + next(min(400, bytes.count - 32))] = specials[next(specials.count)]
                default: bytes = Array(bytes.prefix(next(bytes.count)))
                }
                if bytes.isEmpty { break }
            }
            if Self.outcome(bytes, in: dir) != nil { refused += 1 }
        }
        #expect(refused > 1900)
    }

    /// The file with its header text edited and its header checksum recomputed (the new header
    /// must still end before the data section).
    static func rewritingHeader(_ bytes: [UInt8], _ edit: (String) -> String) -> [UInt8] {
        let length = Int(bytes[16..<24].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = Array(edit(String(decoding: bytes[32..<(32 + length)], as: UTF8.self)).utf8)
        let dataOffset = (32 + length + 4095) / 4096 * 4096
        precondition(32 + header.count <= dataOffset, "the edited header no longer fits")
        var out = Array(bytes[0..<32]) + header + [UInt8](repeating: 0, count: dataOffset - 32 - header.count) + bytes[dataOffset...]
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { for i in 0..<8 { out[16 + i] = $0[i] } }
        var crc = out[0..<24].withUnsafeBytes { CRC32C.checksum($0) }
        crc = out[32..<(32 + header.count)].withUnsafeBytes { CRC32C.checksum($0, continuing: crc) }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { out[24 + i] = $0[i] } }
        return out
    }

    // Issue 12, finding 14: every value FORMAT.md fixes is checked, with a valid header checksum.
    @Test func headerValuesThatBreakTheSpecificationAreRefused() throws {
        let dir = try TemporaryDirectory()
        let original = try Self.smallNativeFile(dir)
        #expect(Self.outcome(Self.rewritingHeader(original) { $0 }, in: dir) == nil)
        let edits: [(String, String, String)] = [
            ("\"format\":\"moeckpt\"", "\"format\":\"gguf\"", "\"format\" must be \"moeckpt\""),
            ("\"checksum\":\"crc32c\"", "\"checksum\":\"md5\"", "\"checksum\" must be \"crc32c\""),
            ("\"version\":[1,0]", "\"version\":[1,1]", "\"version\" must be [1, 0]"),
            ("\"version\":[1,0]", "\"version\":[1]", "\"version\" must be [1, 0]"),
            ("\"version\":[1,0],", "", "\"version\" must be [1, 0]"),
            ("\"metadata\":{", "\"layout\":\"evil\",\"metadata\":{", "\"layout\" must be \"canonical\""),
            ("\"metadata\":{", "\"source_layout\":\"../x\",\"metadata\":{", "\"source_layout\" must be a layout name"),
        ]
        for (old, new, message) in edits {
            let mutant = Self.rewritingHeader(original) { $0.replacingOccurrences(of: old, with: new) }
            let outcome = Self.outcome(mutant, in: dir)
            #expect(outcome?.contains("header is malformed: " + message) == true, "\(new): \(outcome ?? "accepted")")
        }
        // Upper-case or signed checksum digits.
        let upper = Self.rewritingHeader(original) { header in
            let range = header.range(of: "\"crc32c\":\"")!
            let digits = header[range.upperBound...].prefix(8)
            return header.replacingCharacters(
                in: range.upperBound..<header.index(range.upperBound, offsetBy: 8),
                with: digits.contains(where: \.isLetter) ? digits.uppercased() : "+" + digits.dropFirst())
        }
        #expect(Self.outcome(upper, in: dir)?.contains("8 lowercase hex digits") == true)
    }

    // Finding 9: converting a damaged .moeckpt is refused (a flipped data bit, non-zero padding
    // between tensors), naming the file and the damage, with no output; --no-check lets it through.
    @Test func convertingADamagedFileIsRefused() throws {
        let dir = try TemporaryDirectory()
        let original = try Self.smallNativeFile(dir)
        let checkpoint = try MoeckptFile.open(dir.file("small.moeckpt"))
        let ordered = checkpoint.tensors.sorted { $0.offset < $1.offset }
        let tensor = try #require(ordered.first { $0.byteCount > 0 })
        let gap = try #require(zip(ordered, ordered.dropFirst()).first { $0.offset + $0.byteCount < $1.offset })
        var flipped = original
        flipped[tensor.offset + tensor.byteCount / 2] ^= 0x10
        var padded = original
        padded[gap.0.offset + gap.0.byteCount] = 1
        for (name, bytes, message) in [
            ("flipped", flipped, "tensor \"\(tensor.name)\" checksum mismatch"),
            ("padded", padded, "padding before tensor \"\(gap.1.name)\" is not zero"),
        ] {
            let input = dir.file(name + ".moeckpt")
            FileManager.default.createFile(atPath: input, contents: Data(bytes))
            for output in ["out.safetensors", "out.moeckpt", "outdir"] {
                #expect {
                    _ = try Converter.convert(input, to: dir.file(output))
                } throws: { error in
                    (error as? FileError).map { $0.path == input && $0.description.contains(message) } ?? false
                }
                #expect(!FileManager.default.fileExists(atPath: dir.file(output)))
            }
            _ = try Converter.convert(input, to: dir.file("unchecked.safetensors"), options: ConvertOptions(checkIntegrity: false))
            try FileManager.default.removeItem(atPath: dir.file("unchecked.safetensors"))
        }
        // Converting to another layout reads stacked tensors in pieces: each is still checked.
        _ = try Converter.convert(Fixtures.path("models/tiny-mixtral"), to: dir.file("model.moeckpt"))
        var model = [UInt8](try fileBytes(dir.file("model.moeckpt")))
        let gate = try #require(try MoeckptFile.open(dir.file("model.moeckpt")).tensor(named: "layers.1.moe.gate"))
        model[gate.offset + gate.byteCount - 1] ^= 1
        FileManager.default.createFile(atPath: dir.file("damaged.moeckpt"), contents: Data(model))
        for (output, names) in [("hf", "hf"), ("model.h5", nil)] {
            #expect {
                _ = try Converter.convert(
                    dir.file("damaged.moeckpt"), to: dir.file(output), options: ConvertOptions(names: names.map(LayoutKey.init(rawValue:))))
            } throws: { error in
                (error as? FileError).map {
                    $0.path == dir.file("damaged.moeckpt")
                        && $0.description.contains("tensor \"layers.1.moe.gate\" checksum mismatch")
                } ?? false
            }
            #expect(!FileManager.default.fileExists(atPath: dir.file(output)))
        }
    }

    // Finding 4: a model description inside a .moeckpt (checksum recomputed) that plans 2^24
    // layers or experts is refused from counts alone, before any tensor list is made.
    @Test func aHugeDescriptionInsideTheFileIsRefusedBeforeItIsExpanded() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path("models/tiny-mixtral"), to: dir.file("model.moeckpt"))
        let original = [UInt8](try fileBytes(dir.file("model.moeckpt")))
        for (old, new) in [
            ("\"num_hidden_layers\":2", "\"num_hidden_layers\":16777216"),
            ("\"num_local_experts\":4", "\"num_local_experts\":16777216"),
        ] {
            let mutant = Self.rewritingHeader(original) { $0.replacingOccurrences(of: old, with: new) }
            FileManager.default.createFile(atPath: dir.file("huge.moeckpt"), contents: Data(mutant))
            #expect(Self.outcome(mutant, in: dir) == nil)  // the file itself is sound
            #expect {
                _ = try ModelLoader.load(dir.file("huge.moeckpt"))
            } throws: { error in
                (error as? FileError)?.description.contains("the description plans") ?? false
            }
            let report = Inspector.report(try ModelDirectory.open(dir.file("huge.moeckpt")))
            #expect(report.model?.problems.first?.contains("the description plans") == true)
        }
    }
}
