import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// GGUF files: one written by the official `gguf` package (scripts/make_gguf_fixtures.py) reads
/// with its key/values typed and its shapes reversed, describes its model, verifies against
/// transformers and converts back to transformers' own file; malformed headers fail by rule.
struct GGUFTests {
    static let fixture = Fixtures.path("gguf/tiny-mixtral/model.gguf")

    @Test func theOfficialWritersFileReadsTyped() throws {
        let file = try Checkpoint.open(Self.fixture)
        #expect(file.format == .gguf && file.tensors.count == 23)
        let gguf = try #require(file.gguf)
        #expect(gguf.version == 3 && gguf.alignment == 32)
        #expect(gguf.keyValues.first?.key == "general.architecture")
        #expect(gguf.keyValues.first { $0.key == "llama.rope.freq_base" }?.value == .float32(1_000_000))
        #expect(gguf.keyValues.first { $0.key == "llama.block_count" }?.value == .uint32(2))
        #expect(file.metadata["llama.attention.layer_norm_rms_epsilon"] == "1e-05")
        // ggml's ne [16, 32, 4] is the stacked [experts, intermediate, hidden].
        #expect(file.tensor(named: "blk.0.ffn_gate_exps.weight")?.shape == [4, 32, 16])
    }

    @Test func itVerifiesAgainstTransformersAndConvertsBackToTransformersFile() throws {
        let report = try Verifier.verify(Fixtures.path("gguf/tiny-mixtral"), options: RunOptions(threads: 2))
        #expect(report.passed && report.layout == "gguf")
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path("gguf/tiny-mixtral"), to: dir.file("hf"), options: ConvertOptions(names: "hf"))
        #expect(try fileBytes(dir.file("hf/model.safetensors")) == (try fileBytes(Fixtures.path("models/tiny-mixtral/model.safetensors"))))
    }

    /// llama.cpp's converter writes `expert_gating_func` only when config.json names a
    /// `scoring_func`: with DeepSeek's "sigmoid" the file is transformers' model (its reference
    /// outputs verify from the GGUF); without it, llama.cpp runs softmax, and so does moeckpt, which
    /// will not write that model under transformers' names (fixtures/compare, made by llama.cpp).
    @Test func llamaCppsDeepSeekFilesRouteAsLlamaCppRunsThem() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.copyItem(atPath: Fixtures.path("compare/right/llama.cpp-deepseek_v3"), toPath: dir.file("right"))
        try FileManager.default.copyItem(
            atPath: Fixtures.path("models/families/deepseek_v3/expected.safetensors"), toPath: dir.file("right/expected.safetensors"))
        #expect(try Verifier.verify(dir.file("right"), options: RunOptions(threads: 2)).passed)
        let lost = try ModelLoader.standard.load(Fixtures.path("compare/scoring-func-lost/model.gguf"))
        #expect(lost.architecture.moeRouting?.router.scoring == .softmax)
        #expect(throws: FileError.self) {
            try Converter.convert(
                Fixtures.path("compare/scoring-func-lost/model.gguf"), to: dir.file("hf"), options: ConvertOptions(names: "hf"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("hf")))
    }

    /// A model split by the gguf package into NAME-0000i-of-00003.gguf parts opens from any part
    /// (or its directory) as one model; written as one file, it is the unsplit file byte for byte.
    @Test func aSplitModelOpensWholeAndJoinsIntoTheUnsplitFile() throws {
        let directory = Fixtures.path("gguf/tiny-mixtral-split")
        let whole = try Checkpoint.open(directory + "/model-00002-of-00003.gguf")
        #expect(whole.files.count == 3 && whole.tensors.count == 23)
        #expect(try Verifier.verify(directory, options: RunOptions(threads: 2)).passed)
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(directory, to: dir.file("joined.gguf"))
        #expect(try fileBytes(dir.file("joined.gguf")) == (try fileBytes(Self.fixture)))
        // Split again by the same rule, the gguf package's parts byte for byte.
        try FileManager.default.createDirectory(atPath: dir.file("split"), withIntermediateDirectories: false)
        let result = try Converter.convert(Self.fixture, to: dir.file("split/model.gguf"), options: ConvertOptions(maxShardBytes: 25_000))
        #expect(result.files.map { ($0 as NSString).lastPathComponent } == (1...3).map { "model-0000\($0)-of-00003.gguf" })
        for name in result.files.map({ ($0 as NSString).lastPathComponent }) {
            #expect(try fileBytes(dir.file("split/" + name)) == (try fileBytes(directory + "/" + name)), "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("split/model.gguf")))
        // A missing part is named.
        try FileManager.default.createDirectory(atPath: dir.file("two"), withIntermediateDirectories: false)
        for part in ["model-00001-of-00003.gguf", "model-00002-of-00003.gguf"] {
            try FileManager.default.copyItem(atPath: directory + "/" + part, toPath: dir.file("two/" + part))
        }
        #expect {
            _ = try Checkpoint.open(dir.file("two/model-00001-of-00003.gguf"))
        } throws: { error in
            (error as? FileError)?.problem as? GGUFError == .splitPartMissing(3, of: 3)
        }
    }

    /// A header of the given pieces, for the malformed cases.
    struct Builder {
        var bytes: [UInt8] = Array("GGUF".utf8)
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            bytes += Array(s.utf8)
        }
        mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }

        /// Version 3, one u32 key/value, one F32 tensor of `dims` at `offset`, then `data` bytes.
        static func file(
            version: UInt32 = 3, key: String = "general.alignment", keyType: UInt32 = 4, keyValue: UInt32 = 32,
            name: String = "t", dims: [UInt64] = [4], type: UInt32 = 0, offset: UInt64 = 0, data: Int = 16, extraTensor: Bool = false
        ) -> [UInt8] {
            var b = Builder()
            b.u32(version)
            b.u64(extraTensor ? 2 : 1)
            b.u64(1)
            b.string(key)
            b.u32(keyType)
            b.u32(keyValue)
            for n in extraTensor ? [name, name + "2"] : [name] {
                b.string(n)
                b.u32(UInt32(dims.count))
                for d in dims { b.u64(d) }
                b.u32(type)
                b.u64(offset)
            }
            b.pad(to: 32)
            b.bytes += [UInt8](repeating: 0, count: data)
            return b.bytes
        }
    }

    static func parse(_ bytes: [UInt8]) -> GGUFError? {
        bytes.withUnsafeBytes { raw -> GGUFError? in
            do throws(GGUFError) { _ = try GGUFHeader.parse(raw) } catch { return error }
            return nil
        }
    }

    @Test func aWellFormedBuiltFileParses() throws {
        #expect(Self.parse(Builder.file()) == nil)
    }

    @Test func eachRuleHasItsError() {
        #expect(Self.parse(Array("GGUX".utf8) + [UInt8](repeating: 0, count: 40)) == .notGGUF)
        #expect(Self.parse(Builder.file(version: 1)) == .unsupportedVersion(1))
        #expect(Self.parse(Builder.file(version: 4)) == .unsupportedVersion(4))
        #expect(Self.parse(Builder.file(key: "")) == .emptyKey)
        #expect(Self.parse(Builder.file(keyType: 13)) == .unknownValueType(key: "general.alignment", type: 13))
        #expect(Self.parse(Builder.file(keyValue: 24)) == .badAlignment("24"))
        #expect(Self.parse(Builder.file(name: String(repeating: "n", count: 64))) == .tensorNameTooLong(String(repeating: "n", count: 64)))
        #expect(Self.parse(Builder.file(dims: [1, 1, 1, 1, 4])) == .tooManyDimensions(tensor: "t", count: 5))
        #expect(Self.parse(Builder.file(type: 4)) == .unknownGGMLType(tensor: "t", type: 4))
        #expect(Self.parse(Builder.file(dims: [16], type: 8)) == .rowNotWholeBlocks(tensor: "t", elements: 16, type: "Q8_0"))
        #expect(Self.parse(Builder.file(offset: 4)) == .misalignedOffset(tensor: "t", offset: 4, alignment: 32))
        #expect(Self.parse(Builder.file(data: 8)) == .outsideData(tensor: "t", offset: 0, bytes: 16, dataBytes: 8))
        #expect(Self.parse(Builder.file(extraTensor: true)) == .overlap(tensor: "t2", other: "t"))
        #expect(Self.parse(Builder.file(dims: [UInt64(1) << 62, 8])) == .sizeOverflow(tensor: "t"))
    }

    @Test func countsTheFileCannotHoldAreRefusedBeforeAnythingIsAllocated() {
        var b = Builder()
        b.u32(3)
        b.u64(1)
        b.u64(UInt64.max)
        #expect(Self.parse(b.bytes) == .countTooLarge(what: "key/values", count: UInt64.max))
        var array = Builder()
        array.u32(3)
        array.u64(0)
        array.u64(1)
        array.string("tokenizer.ggml.tokens")
        array.u32(9)
        array.u32(8)
        array.u64(UInt64(1) << 40)
        #expect(Self.parse(array.bytes) == .truncated("tokenizer.ggml.tokens's value"))
        var nested = Builder()
        nested.u32(3)
        nested.u64(0)
        nested.u64(1)
        nested.string("k")
        nested.u32(9)
        nested.u32(9)
        nested.u64(1)
        #expect(Self.parse(nested.bytes) == .nestedArray(key: "k"))
    }

    /// A tensor of a type moeckpt does not read (IQ2_XXS here) is refused by name, with the types
    /// it reads; Q5_K (llama.cpp's Q4_K_M files hold it) is among them.
    @Test func aTypeNotReadIsNamedWithTheOnesThatAre() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("iq2.gguf")
        try Data(Builder.file(dims: [256], type: 16, data: 96)).write(to: URL(fileURLWithPath: path))
        #expect(throws: FileError.self) { try Checkpoint.open(path) }
        do { _ = try Checkpoint.open(path) } catch {
            #expect(error.description.contains("t is IQ2_XXS, which moeckpt does not read yet (it reads F32, F16, Q4_0, Q8_0"), "\(error)")
            #expect(error.description.contains("Q4_K, Q5_K, Q6_K") && !error.description.contains("Q5_0"), "\(error)")
        }
    }

    /// Every prefix of the official file fails with one error, never a crash.
    @Test func everyTruncationIsAnError() throws {
        let bytes = Array(try fileBytes(Self.fixture))
        let dataStart = try bytes.withUnsafeBytes { try GGUFHeader.parse($0) }.dataStart
        for length in stride(from: 0, to: bytes.count, by: 7) {
            let error = Self.parse(Array(bytes[0..<length]))
            if length < dataStart { #expect(error != nil, "\(length) bytes") } else { #expect(error != nil || length == bytes.count) }
        }
    }
}

/// moeckpt's GGUF writer: the gguf package's layout byte for byte, values typed as its writer
/// types them, and the round trips the issue asks for.
struct GGUFWriterTests {
    @Test func aGGUFInputGoesThroughByteForByte() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(GGUFTests.fixture, to: dir.file("same.gguf"))
        #expect(try fileBytes(dir.file("same.gguf")) == (try fileBytes(GGUFTests.fixture)))
    }

    @Test(arguments: ["models/tiny-mixtral", "models/tiny-mixtral-bf16", "models/families/qwen3_moe-bf16"])
    func transformersToGGUFAndBackIsExact(model: String) throws {
        let dir = try TemporaryDirectory()
        let original = try ModelLoader.load(Fixtures.path(model))
        _ = try Converter.convert(Fixtures.path(model), to: dir.file("model.gguf"))
        let written = try Checkpoint.open(dir.file("model.gguf"))
        #expect(written.gguf?.keyValues.first?.value == .string(written.metadata["general.architecture"] ?? ""))
        #expect(written.gguf?.keyValues.contains { $0.key.hasSuffix(".block_count") && $0.value.type == .uint32 } == true)
        #expect(written.gguf?.keyValues.contains { $0.key == "tokenizer.ggml.model" && $0.value == .string("none") } == true)
        let reloaded = try ModelLoader.load(dir.file("model.gguf"))
        #expect(reloaded.layout.key == "gguf")
        #expect(
            (reloaded.architecture as? any DecoderArchitecture)?.decoder == (original.architecture as? any DecoderArchitecture)?.decoder)
        // Norms and routers are F32 in GGUF whatever the weights are (llama.cpp's rule); a BF16
        // model comes back exactly with --dtype bf16 (BF16 -> F32 -> BF16 is exact).
        #expect(written.tensors.filter { GGUFWriter.staysF32($0.name, shape: $0.shape) }.allSatisfy { $0.dtype == .f32 })
        let dtype = try ModelDirectory.open(Fixtures.path(model)).tensors.contains { $0.dtype == .bf16 } ? DType.bf16 : nil
        _ = try Converter.convert(
            dir.file("model.gguf"), to: dir.file("back"), options: ConvertOptions(dtype: dtype, names: original.layout.key))
        let back = try ModelDirectory.open(dir.file("back")), source = try ModelDirectory.open(Fixtures.path(model))
        #expect(Set(back.tensors.map(\.name)) == Set(source.tensors.map(\.name)))
        for tensor in source.tensors {
            let mine = try #require(back.tensor(named: tensor.name))
            #expect(mine.dtype == tensor.dtype && mine.shape == tensor.shape && Array(mine.bytes) == Array(tensor.bytes), "\(tensor.name)")
        }
    }

    @Test func ggufOutputOptionsAreChecked() throws {
        #expect(throws: OutputPlanError.ggufHasGGUFNames("hf")) {
            try OutputPlan(destination: "x.gguf", options: ConvertOptions(names: "hf"))
        }
        #expect(try OutputPlan(destination: "x.gguf", options: ConvertOptions(maxShardBytes: 1000)).container == .gguf(maxShardBytes: 1000))
    }
}

extension GGUFWriterTests {
    /// Every value type and arrays go through the writer and the reader unchanged; arrays are
    /// summarised for `inspect`, their strings escaped there.
    @Test func everyValueTypeRoundTrips() throws {
        let keyValues: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("llama")), ("a.u8", .uint8(200)), ("a.i8", .int8(-3)), ("a.u16", .uint16(60_000)),
            ("a.i16", .int16(-30_000)), ("a.u32", .uint32(4_000_000_000)), ("a.i32", .int32(-2)), ("a.f32", .float32(0.1)),
            ("a.bool", .bool(true)), ("a.u64", .uint64(1 << 40)), ("a.i64", .int64(-(1 << 40))), ("a.f64", .float64(0.1)),
            ("tokenizer.ggml.tokens", .array(elementType: .string, [.string("<s>"), .string("a\nb"), .string("c"), .string("d")])),
        ]
        let dir = try TemporaryDirectory()
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let bytes = values.withUnsafeBytes { Array($0) }
        let tensor = TensorToWrite(name: "t", dtype: .f32, shape: [2, 3], byteCount: 24) { (sink: any ByteSink) throws(FileError) in
            try sink.write(bytes)
        }
        let file = try OutputFile(creating: dir.file("v.gguf"))
        try GGUFWriter.write([tensor], keyValues: keyValues, to: file)
        try file.close()
        let read = try Checkpoint.open(dir.file("v.gguf"))
        let gguf = try #require(read.gguf)
        #expect(gguf.keyValues.map(\.key) == keyValues.map(\.key))
        #expect(zip(gguf.keyValues, keyValues).allSatisfy { $0.value == $1.value })
        #expect(read.tensor(named: "t")?.shape == [2, 3] && Array(read.tensor(named: "t")!.bytes) == bytes)
        #expect(read.attributes.map(\.value) == ["[4 x string: <s>, a\nb, c, ...]"])
        #expect(read.metadata["a.f32"] == "0.1" && read.metadata["a.bool"] == "true")
    }
}

/// Q8_0 and Q4_0 against the `gguf` package's codecs (fixtures/gguf/quants.safetensors,
/// scripts/make_quant_fixtures.py): the same blocks from the same floats, the same floats back.
struct GGMLBlockTests {
    static func bytes(_ name: String, in file: Checkpoint) throws -> [UInt8] { Array(try #require(file.tensor(named: name)).bytes) }
    static func floats(_ name: String, in file: Checkpoint) throws -> [Float] {
        try bytes(name, in: file).withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        }
    }

    @Test func quantizeAndDequantizeAreTheReferences() throws {
        let file = try Checkpoint.open(Fixtures.path("gguf/quants.safetensors"))
        let x = try Self.floats("x", in: file)
        for (name, type) in [("q8_0", GGMLType.q8_0), ("q4_0", .q4_0)] {
            var blocks = [UInt8](repeating: 0, count: x.count / 32 * type.blockBytes)
            var back = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { xp in blocks.withUnsafeMutableBytes { type.quantizer!(xp.baseAddress!, x.count, $0.baseAddress!) } }
            #expect(blocks == (try Self.bytes(name, in: file)), "\(name) blocks")
            blocks.withUnsafeBytes { raw in
                back.withUnsafeMutableBufferPointer { type.dequantizer!(raw.baseAddress!, x.count, $0.baseAddress!) }
            }
            #expect(back.map(\.bitPattern) == (try Self.floats(name + ".dequantized", in: file)).map(\.bitPattern), "\(name) values")
        }
    }

    @Test func kQuantsDequantizeAsTheReference() throws {
        let file = try Checkpoint.open(Fixtures.path("gguf/quants.safetensors"))
        for (name, type) in [("q4_k", GGMLType.q4_K), ("q6_k", .q6_K), ("q5_k", .q5_K)] {
            let blocks = try Self.bytes(name, in: file), expected = try Self.floats(name + ".dequantized", in: file)
            var values = [Float](repeating: .nan, count: expected.count)
            blocks.withUnsafeBytes { raw in
                values.withUnsafeMutableBufferPointer { type.dequantizer!(raw.baseAddress!, expected.count, $0.baseAddress!) }
            }
            #expect(values.map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
        }
    }
}

extension GGUFWriterTests {
    /// `--dtype q8_0` quantizes a GGUF output's weights block by block (the codec is checked
    /// against gguf.quants above); norms, routers and rows that are not whole blocks stay F32.
    @Test func q8_0OutputQuantizesTheWeightsOnly() throws {
        let dir = try TemporaryDirectory()
        let model = Fixtures.path("models/families/qwen3_moe")
        _ = try Converter.convert(model, to: dir.file("f32.gguf"))
        _ = try Converter.convert(model, to: dir.file("q8.gguf"), options: ConvertOptions(blocks: .q8_0))
        let mapping = try FileMapping(path: dir.file("q8.gguf"))
        let header = try GGUFHeader.parse(mapping.bytes)
        let f32 = try Checkpoint.open(dir.file("f32.gguf"))
        var quantized = 0
        for info in header.tensors {
            let source = try #require(f32.tensor(named: info.name))
            if GGUFWriter.staysF32(info.name, shape: info.shape) || (info.shape.last ?? 0) % 32 != 0 {
                #expect(info.type == .f32, "\(info.name)")
                continue
            }
            try #require(info.type == .q8_0 && info.shape == source.shape, "\(info.name)")
            var blocks = [UInt8](repeating: 0, count: source.elementCount / 32 * GGMLBlocks.q8_0Bytes)
            blocks.withUnsafeMutableBytes { out in
                GGMLBlocks.quantizeQ8_0(
                    source.bytes.baseAddress!.assumingMemoryBound(to: Float.self), count: source.elementCount, into: out.baseAddress!)
            }
            let start = header.dataStart + info.offset
            #expect(Array(mapping.bytes[start..<(start + info.byteCount)]) == blocks, "\(info.name)")
            quantized += 1
        }
        #expect(quantized >= 8)
        #expect(throws: OutputPlanError.blocksNeedGGUF("Q8_0")) {
            try OutputPlan(destination: "x.safetensors", options: ConvertOptions(blocks: .q8_0))
        }
    }
}

/// Quantized GGUF tensors read: their F32 values (ggml's dequantization) for conversions, and
/// their blocks as they are for the forward pass, which gives the same logits bit for bit.
struct GGUFBlocksForwardTests {
    @Test(arguments: ["models/tiny-mixtral", "models/families/qwen3_moe", "models/families/granitemoe"])
    func q8_0BlocksRunInPlaceWithTheDequantizedWeightsResults(model: String) throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(Fixtures.path(model), to: dir.file("q8.gguf"), options: ConvertOptions(blocks: .q8_0))
        let loaded = try ModelLoader.load(dir.file("q8.gguf"))
        let blockTensors = loaded.checkpoint.tensors.filter { $0.blocks?.type == .q8_0 }
        #expect(!blockTensors.isEmpty && loaded.quantized.count == blockTensors.count)
        // Query/key rows reordered (GraniteMoE's rotary order in llama.cpp) are blocks too.
        if model.contains("granite") { #expect(loaded.quantized["layers.0.attn.q"] != nil) }
        let widened = LoadedModel(
            architecture: loaded.architecture, descriptionSource: loaded.descriptionSource, layout: loaded.layout,
            tensors: loaded.tensors, checkpoint: loaded.checkpoint)
        let input = ModelInput.tokenIDs([[1, 5, 9, 2, 7, 3], [4, 4, 8, 0, 6, 1]])
        let blocks = try loaded.architecture.forwardPass(loaded).run(input, threads: 2, auxLosses: false)
        let floats = try widened.architecture.forwardPass(widened).run(input, threads: 2, auxLosses: false)
        #expect(blocks[.logits] != nil && blocks[.logits] == floats[.logits])
        // A quantized GGUF goes to GGUF with its blocks as they are.
        _ = try Converter.convert(dir.file("q8.gguf"), to: dir.file("again.gguf"))
        #expect(try fileBytes(dir.file("again.gguf")) == (try fileBytes(dir.file("q8.gguf"))))
        // And the F32 values are ggml's: converting back gives them.
        let q8 = try #require(blockTensors.first)
        var expected = [Float](repeating: .nan, count: q8.elementCount)
        try q8.blocks!.rope.load()
        let raw = q8.blocks!.rope.copyBytes()
        raw.withUnsafeBytes { b in
            expected.withUnsafeMutableBufferPointer {
                GGMLBlocks.dequantizeQ8_0(b.baseAddress!, count: q8.elementCount, into: $0.baseAddress!)
            }
        }
        let values = try q8.load()
        #expect((0..<q8.elementCount).allSatisfy { values.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) == expected[$0] })
    }
}

extension GGUFBlocksForwardTests {
    /// Files llama.cpp's converter quantized (scripts/make_quantized_gguf_fixtures.py): within the
    /// tolerance their expected file states (what the quantization costs transformers itself) of
    /// the float32 outputs, reported as quantized; and at 1e-4 of what transformers computes on
    /// the same dequantized weights. A tolerance tighter than the quantization error fails.
    /// Q4_K_M is llama.cpp's own `llama_model_quantize` (Q4_K and Q6_K tensors); every block
    /// tensor is read in place (none widened to F32).
    @Test(arguments: ["q8_0", "q4_0", "q4_k_m"]) func llamaCppsQuantizedFilesVerify(type: String) throws {
        let directory = Fixtures.path("gguf/qwen3-moe-\(type)")
        let loaded = try ModelLoader.load(directory)
        let blockTensors = loaded.checkpoint.tensors.filter { $0.blocks != nil }
        #expect(!blockTensors.isEmpty && loaded.quantized.count == blockTensors.count)
        if type == "q4_k_m" { #expect(Set(blockTensors.map { $0.blocks!.type }) == [.q4_K, .q6_K]) }
        let report = try Verifier.verify(directory, options: RunOptions(threads: 2))
        #expect(report.passed && report.quantized && report.atol > 0.1)
        let exact = try Verifier.verify(
            directory + "/model.gguf", expected: directory + "/dequantized/expected.safetensors", options: RunOptions(threads: 2))
        #expect(exact.passed && exact.atol == 1e-4)
        let tight = try Verifier.verify(directory, atol: 1e-3, rtol: 0, options: RunOptions(threads: 2))
        #expect(!tight.passed)
    }
}

extension GGUFBlocksForwardTests {
    /// llama.cpp's own logits on the same files (scripts/make_llamacpp_logits.py): in ggml's
    /// arithmetic (activations quantized per block, integer products; BF16 activations and
    /// `vdpbf16ps` pairs) moeckpt computes them within float rounding, at every batch size; in
    /// exact arithmetic it is tenths of a logit away (BF16: hundredths).
    @Test(arguments: ["q8_0", "q4_0", "q4_k_m", "bf16"]) func ggmlArithmeticGivesLlamaCppsLogits(type: String) throws {
        let directory = Fixtures.path("gguf/qwen3-moe-\(type)")
        let (model, expected) = (directory + "/model.gguf", directory + "/llamacpp/expected.safetensors")
        let ggml = try Verifier.verify(model, expected: expected, options: RunOptions(threads: 2, arithmetic: .ggml))
        #expect(ggml.passed && ggml.atol <= 3e-5, "\(Verifier.render(ggml))")
        if type == "bf16" {  // the same bits (BF16 pairs are vdpbf16ps's on every variant)
            let bits = try Verifier.verify(model, expected: expected, atol: 0, rtol: 0, options: RunOptions(threads: 2, arithmetic: .ggml))
            #expect(bits.passed, "\(Verifier.render(bits))")
        }
        let exact = try Verifier.verify(
            model, expected: expected, atol: type == "bf16" ? 0.01 : 0.1, rtol: 0, options: RunOptions(threads: 2))
        #expect(!exact.passed)
    }
}

extension GGUFWriterTests {
    /// F16 weights (norms excepted, which GGUF keeps in F32) go to GGUF and back unchanged.
    @Test func f16WeightsGoThroughGGUFExactly() throws {
        let dir = try TemporaryDirectory()
        _ = try Converter.convert(
            Fixtures.path("models/tiny-mixtral"), to: dir.file("f16"), options: ConvertOptions(dtype: .f16, names: "hf"))
        _ = try Converter.convert(dir.file("f16"), to: dir.file("f16.gguf"))
        let gguf = try Checkpoint.open(dir.file("f16.gguf"))
        #expect(
            gguf.tensors.contains { $0.dtype == .f16 }
                && gguf.tensors.filter { $0.name.hasSuffix("_norm.weight") }.allSatisfy { $0.dtype == .f32 })
        _ = try Converter.convert(dir.file("f16.gguf"), to: dir.file("back"), options: ConvertOptions(dtype: .f16, names: "hf"))
        #expect(try fileBytes(dir.file("back/model.safetensors")) == (try fileBytes(dir.file("f16/model.safetensors"))))
    }
}
