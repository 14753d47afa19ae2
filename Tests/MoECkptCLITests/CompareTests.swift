import Foundation
import MoECkptTestSupport
import Testing

/// `moeckpt compare` (issue 19, first step: descriptions and weights). The broken conversions are
/// made from transformers-saved models by scripts/make_compare_fixtures.py, which names in
/// fixtures/compare/CASES.json the mistake each one holds; the right conversions are the layouts
/// of fixtures/models/layouts (transformers' fused save, gguf-py's names, mlx-lm's sanitize).
struct CompareTests {
    struct Case: Decodable {
        let original: String
        let mistake: String?
        let description: String?
    }

    static let cases: [String: Case] = {
        let data = try! fileBytes(Fixtures.path("compare/CASES.json"))
        return try! JSONDecoder().decode([String: Case].self, from: data)
    }()

    @Test(arguments: ["hf-fused", "hf-sharded", "gguf", "mlx", "mistral"])
    func rightConversionsAreEquivalent(layout: String) throws {
        let result = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), Fixtures.path("models/layouts/\(layout)")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasSuffix("equivalent\n") && !result.stdout.contains("NOT"))
    }

    /// Each broken conversion fails (exit 1) and is named.
    @Test(arguments: cases.keys.sorted())
    func brokenConversionsAreNamed(name: String) throws {
        let known = try #require(Self.cases[name])
        let result = try CLI.run(["compare", Fixtures.path(known.original), Fixtures.path("compare/\(name)")])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        if let mistake = known.mistake {
            #expect(result.stdout.contains("likely mistakes:\n  - \(mistake)"), "\(result.stdout)")
        }
        if let key = known.description {
            #expect(result.stdout.contains("  \(key): "), "\(result.stdout)")
        }
        // The JSON report says the same.
        let json = try CLI.run(["compare", Fixtures.path(known.original), Fixtures.path("compare/\(name)"), "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["equivalent"] as? Bool == false)
        if let mistake = known.mistake {
            #expect((report["mistakes"] as? [String])?.first?.hasPrefix(mistake) == true, "\(report["mistakes"] ?? "")")
        }
    }

    /// A float dtype against another: within the coarser one's rounding by default, and a bf16
    /// copy compared under --atol 0 fails.
    @Test func dtypesAreComparedWithinTheirRounding() throws {
        let (a, b) = (Fixtures.path("models/tiny-mixtral"), Fixtures.path("models/tiny-mixtral-bf16"))
        #expect(try CLI.run(["compare", a, b]).status == 0)
        let strict = try CLI.run(["compare", a, b, "--atol", "0", "--rtol", "0"])
        #expect(strict.status == 1 && strict.stdout.contains("DIFFERS"), "\(strict.stdout)")
    }

    @Test func badInputIsOneLineWithStatusTwo() throws {
        let other = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), Fixtures.path("models/families/qwen3_moe")])
        #expect(other.status == 2 && other.stderr.contains("compare takes two checkpoints of one architecture"), "\(other.stderr)")
        #expect(other.stderr.split(separator: "\n").count == 1 && other.stdout.isEmpty)
        let missing = try CLI.run(["compare", Fixtures.path("models/layouts/hf"), "/nonexistent/model"])
        #expect(missing.status == 2 && missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
    }
}
