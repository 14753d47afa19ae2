import Foundation
import MoECkptTestSupport
import Testing

/// `moeckpt compare` (issue 19). scripts/make_compare_fixtures.py lists in fixtures/compare/CASES.json
/// conversions made by the other tools' own code (llama.cpp's converter, gguf-py's writer, mlx-lm's
/// convert, transformers 5's v4 -> v5 conversion), which compare must find equivalent, and broken
/// conversions of transformers-saved models, each with the mistake compare must name.
struct CompareTests {
    struct Cases: Decodable {
        let broken: [String: Broken]
        let right: [String: Right]
    }

    struct Broken: Decodable {
        let original: String
        let mistake: String?
        let description: String?
        let missing: String?
    }

    struct Right: Decodable {
        let original: String
        let converted: String
        let tool: String
    }

    static let cases: Cases = {
        let data = try! fileBytes(Fixtures.path("compare/CASES.json"))
        return try! JSONDecoder().decode(Cases.self, from: data)
    }()

    @Test(arguments: cases.right.keys.sorted())
    func conversionsByTheToolsAreEquivalent(name: String) throws {
        let known = try #require(Self.cases.right[name])
        let result = try CLI.run(["compare", Fixtures.path(known.original), Fixtures.path(known.converted)])
        #expect(result.status == 0, "\(known.tool): \(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasSuffix("\nequivalent\n") && !result.stdout.contains("FAIL"), "\(result.stdout)")
    }

    @Test(arguments: ["hf-fused", "hf-sharded", "gguf", "mlx", "mistral"])
    func layoutsAreEquivalent(layout: String) throws {
        let result = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), Fixtures.path("models/layouts/\(layout)")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasSuffix("equivalent\n") && !result.stdout.contains("NOT"))
    }

    /// Each broken conversion fails (exit 1) and is named.
    @Test(arguments: cases.broken.keys.sorted())
    func brokenConversionsAreNamed(name: String) throws {
        let known = try #require(Self.cases.broken[name])
        let result = try CLI.run(["compare", Fixtures.path(known.original), Fixtures.path("compare/\(name)")])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        if let mistake = known.mistake {
            #expect(result.stdout.contains("likely mistakes:\n  - \(mistake)"), "\(result.stdout)")
        }
        if let key = known.description {
            #expect(result.stdout.contains("  \(key): "), "\(result.stdout)")
        }
        if let tensor = known.missing {
            let row = result.stdout.split(separator: "\n").first { $0.hasPrefix("  \(tensor) ") }
            #expect(row?.hasSuffix("missing in B") == true, "\(result.stdout)")
        }
        // The JSON report says the same.
        let json = try CLI.run(["compare", Fixtures.path(known.original), Fixtures.path("compare/\(name)"), "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["equivalent"] as? Bool == false)
        if let mistake = known.mistake {
            #expect((report["mistakes"] as? [String])?.first?.hasPrefix(mistake) == true, "\(report["mistakes"] ?? "")")
        }
    }

    /// Both models run on the same token ids: the first output beyond the tolerance is the layer
    /// the broken conversion changed (hidden_states.N is layer N - 1's output), router agreement
    /// drops where the routing changed, and a right conversion passes everywhere.
    @Test func forwardNamesTheFirstLayerThatParts() throws {
        let original = Fixtures.path("models/layouts/hf")
        for (broken, first) in [("experts-reordered", "hidden_states.2"), ("expert-rows-shuffled", "hidden_states.1")] {
            let result = try CLI.run(["compare", original, Fixtures.path("compare/\(broken)"), "--json", "--tokens", "12"])
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let forward = try #require(report["forward"] as? [String: Any])
            #expect(forward["first_divergence"] as? String == first, "\(broken): \(forward)")
            let outputs = try #require(forward["outputs"] as? [[String: Any]])
            #expect(outputs.count == 6 && outputs.first?["name"] as? String == "hidden_states.0")
        }
        let norm = try CLI.run(["compare", Fixtures.path("models/families/qwen3_moe"), Fixtures.path("compare/norm-topk-prob-dropped")])
        #expect(norm.stdout.contains("first divergence: hidden_states.1"), "\(norm.stdout)")
        let right = try CLI.run(["compare", original, Fixtures.path("models/layouts/gguf"), "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(right.stdout.utf8)) as? [String: Any])
        let outputs = try #require((report["forward"] as? [String: Any])?["outputs"] as? [[String: Any]])
        #expect(outputs.allSatisfy { $0["passed"] as? Bool == true && ($0["agreement"] as? Double ?? 1) == 1 }, "\(outputs)")
    }

    /// A float dtype against another: within the coarser one's rounding by default, and a bf16
    /// copy compared under --atol 0 fails.
    @Test func dtypesAreComparedWithinTheirRounding() throws {
        let (a, b) = (Fixtures.path("models/tiny-mixtral"), Fixtures.path("models/tiny-mixtral-bf16"))
        #expect(try CLI.run(["compare", a, b]).status == 0)
        let strict = try CLI.run(["compare", a, b, "--atol", "0", "--rtol", "0"])
        #expect(strict.status == 1 && strict.stdout.contains("DIFFERS"), "\(strict.stdout)")
    }

    /// Quantized against float: the figures, no verdict, unless tolerances are given.
    @Test func quantizedAgainstFloatReportsWithoutFailing() throws {
        let dir = try TemporaryDirectory()
        let original = Fixtures.path("models/families/qwen3_moe")
        #expect(try CLI.run(["convert", original, dir.file("q8.gguf"), "--dtype", "q8_0", "--quiet"]).status == 0)
        let result = try CLI.run(["compare", original, dir.file("q8.gguf")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("reported without a tolerance") && result.stdout.contains("(figures only)"), "\(result.stdout)")
        let strict = try CLI.run(["compare", original, dir.file("q8.gguf"), "--atol", "1e-6"])
        #expect(strict.status == 1, "\(strict.stdout)")
    }

    @Test func badInputIsOneLineWithStatusTwo() throws {
        let other = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), Fixtures.path("models/families/qwen3_moe")])
        #expect(other.status == 2 && other.stderr.contains("compare takes two checkpoints of one architecture"), "\(other.stderr)")
        #expect(other.stderr.split(separator: "\n").count == 1 && other.stdout.isEmpty)
        let missing = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), "/nonexistent/model"])
        #expect(missing.status == 2 && missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
    }
}
