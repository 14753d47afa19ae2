import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// moeckpt's writer against files written by the official safetensors library and transformers.
struct SafetensorsRoundTripTests {
    static func sameTensors(_ a: Checkpoint, _ b: Checkpoint) -> Bool {
        guard a.tensors.count == b.tensors.count else { return false }
        return a.tensors.allSatisfy { tensor in
            guard let other = b.tensor(named: tensor.name) else { return false }
            return other.dtype == tensor.dtype && other.shape == tensor.shape && Array(other.bytes) == Array(tensor.bytes)
        }
    }

    /// Files the official writer produced with a `format` entry come back byte for byte: same
    /// order, same JSON, same padding.
    @Test(arguments: ["single_meta.safetensors", "metadata_unicode.safetensors", "tiny-mixtral/model.safetensors"])
    func rewritingAnOfficialFileReproducesItExactly(file: String) throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out.safetensors")
        _ = try Converter.convert(Fixtures.path("safetensors/" + file), to: out)
        #expect(try fileBytes(out) == fileBytes(Fixtures.path("safetensors/" + file)))
    }

    @Test func everyDtypeSurvivesARoundTripAndGainsFormatPT() throws {
        let dir = try TemporaryDirectory()
        let source = try Checkpoint.open(Fixtures.path("safetensors/all_dtypes.safetensors"))
        let out = dir.file("out.safetensors")
        _ = try Converter.convert(source.path, to: out)
        let copy = try Checkpoint.open(out)
        #expect(Self.sameTensors(source, copy))
        #expect(copy.metadata == ["format": "pt"])
    }

    @Test func shardedTransformersCheckpointJoinsIntoTheirSingleFile() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("joined.safetensors")
        let result = try Converter.convert(Fixtures.path("safetensors/tiny-mixtral-sharded"), to: out)
        #expect(result.tensors == 41)
        #expect(try fileBytes(out) == fileBytes(Fixtures.path("safetensors/tiny-mixtral/model.safetensors")))
    }

    @Test func splittingAndJoiningIsExact() throws {
        let dir = try TemporaryDirectory()
        let original = Fixtures.path("safetensors/tiny-mixtral/model.safetensors")
        let sharded = dir.file("sharded")
        let result = try Converter.convert(original, to: sharded, options: ConvertOptions(maxShardBytes: 20_000))
        #expect(result.files.count == 4)
        let names = try FileManager.default.contentsOfDirectory(atPath: sharded).sorted()
        #expect(
            names == [
                "config.json", "generation_config.json", "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                "model.safetensors.index.json",
            ])
        // Each shard respects the limit (no single tensor here is larger than it).
        for name in names where name.hasSuffix(".safetensors") {
            let shard = try Checkpoint.open(sharded + "/" + name)
            #expect(shard.tensors.reduce(0) { $0 + $1.byteCount } <= 20_000)
        }
        let index = try JSONSerialization.jsonObject(with: fileBytes(sharded + "/model.safetensors.index.json")) as! [String: Any]
        #expect((index["weight_map"] as? [String: String])?.count == 41)
        // The metadata transformers' save_pretrained wrote for the same model (total_parameters, total_size).
        let theirs =
            try JSONSerialization.jsonObject(
                with: fileBytes(Fixtures.path("safetensors/tiny-mixtral-sharded/model.safetensors.index.json"))) as! [String: Any]
        #expect(index["metadata"] as? [String: Int] == theirs["metadata"] as? [String: Int])
        #expect((index["metadata"] as? [String: Int])?["total_parameters"] == 16_080)

        let joined = dir.file("joined.safetensors")
        _ = try Converter.convert(sharded, to: joined)
        #expect(try fileBytes(joined) == fileBytes(original))
    }

    @Test func aDirectoryOutputWithoutShardingHoldsModelSafetensorsAndTheConfig() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("model-dir")
        _ = try Converter.convert(Fixtures.path("safetensors/tiny-mixtral-sharded"), to: out)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: out).sorted()
                == ["config.json", "generation_config.json", "model.safetensors"])
        #expect(try fileBytes(out + "/config.json") == fileBytes(Fixtures.path("safetensors/tiny-mixtral-sharded/config.json")))
    }

    @Test func readsEveryShapeKind() throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("safetensors/odd_shapes.safetensors"))
        let shapes = Dictionary(uniqueKeysWithValues: checkpoint.tensors.map { ($0.name, $0.shape) })
        #expect(
            shapes == [
                "scalar": [], "empty": [0], "empty_middle": [2, 0, 3], "one": [1], "prime": [13],
                "cube": [3, 5, 7], "odd_f16": [5, 3],
            ])
        let scalar = try #require(checkpoint.tensor(named: "scalar"))
        #expect(scalar.bytes.loadUnaligned(as: Float.self) == 3.5)
        #expect(checkpoint.tensor(named: "one")?.bytes.loadUnaligned(as: Float.self) == -1.25)
        #expect(checkpoint.tensor(named: "empty_middle")?.byteCount == 0)
    }

    @Test func readsSubByteAndMinifloatDtypesBytesExactly() throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("safetensors/all_dtypes.safetensors"))
        #expect(Set(checkpoint.tensors.map(\.dtype.name)) == Set(DType.allCases.map(\.name)).subtracting(["F6_E2M3", "F6_E3M2"]))
        // torch packs F4 element 2k into the low nibble of byte k: codes 0..15 in order.
        let f4 = try #require(checkpoint.tensor(named: "f4"))
        #expect(f4.shape == [4, 4] && Array(f4.bytes) == [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE])
        // The float tensors start 0, -0, inf, -inf, nan, ... (scripts/make_fixtures.py).
        let f16 = try #require(checkpoint.tensor(named: "f16"))
        let first = (0..<5).map { f16.bytes.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
        #expect(Array(first.prefix(4)) == [0x0000, 0x8000, 0x7C00, 0xFC00] && first[4] & 0x7FFF > 0x7C00)

        let handmade = try Checkpoint.open(Fixtures.path("safetensors/handmade_subbyte.safetensors"))
        let f6 = try #require(handmade.tensor(named: "f6_e2m3_small"))
        #expect(f6.dtype == .f6E2M3 && f6.shape == [2, 4] && f6.byteCount == 6)
        #expect(handmade.metadata["packing"] == "lsb-first bit stream")
    }

    @Test func refusesToWriteOverItsInput() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("in.safetensors")
        try FileManager.default.copyItem(atPath: Fixtures.path("safetensors/single_meta.safetensors"), toPath: input)
        let before = try fileBytes(input)
        #expect {
            _ = try Converter.convert(input, to: input)
        } throws: { error in
            (error as? FileError)?.problem as? OutputError == .destinationIsInput
        }
        #expect(try fileBytes(input) == before)
        #expect(dir.contents() == ["in.safetensors"])
    }

    @Test func refusesANonEmptyOutputDirectory() throws {
        let dir = try TemporaryDirectory()
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir.file("keep.txt")))
        #expect {
            _ = try Converter.convert(Fixtures.path("safetensors/tiny-mixtral"), to: dir.path)
        } throws: { error in
            (error as? FileError)?.problem as? OutputError == .directoryNotEmpty
        }
        #expect(dir.contents() == ["keep.txt"])
    }

    @Test func leavesNothingBehindWhenTheInputIsBad() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: FileError.self) {
            _ = try Converter.convert(Fixtures.path("malformed/gapOrOverlap-gap.safetensors"), to: dir.file("out.safetensors"))
        }
        #expect(dir.contents().isEmpty)
    }

    @Test func removesLeftoversOfAKilledWriter() throws {
        let dir = try TemporaryDirectory()
        // A partial file left by a process that no longer exists (pid 2^22 - 1 is above pid_max's default).
        let stale = dir.file(".out.safetensors.moeckpt-partial-4194303")
        try Data("partial".utf8).write(to: URL(fileURLWithPath: stale))
        _ = try Converter.convert(Fixtures.path("safetensors/single_meta.safetensors"), to: dir.file("out.safetensors"))
        #expect(dir.contents() == ["out.safetensors"])
    }
}
