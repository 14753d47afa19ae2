import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkptFormats

/// One crafted file per validation rule (fixtures/malformed, made by scripts/make_fixtures.py);
/// EXPECTED.json names the rule each one breaks.
struct MalformedCorpusTests {
    static let expected: [(file: String, rule: String)] = {
        guard let data = try? Data(contentsOf: Fixtures.root.appendingPathComponent("malformed/EXPECTED.json")),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [] }
        return json.keys.sorted().compactMap { file in
            guard let entry = json[file] as? [String: Any], let rule = entry["error"] as? String else { return nil }
            return (file, rule)
        }
    }()

    @Test func corpusCoversEveryRule() {
        let rules = Set(Self.expected.map(\.rule))
        let all = [
            "fileTooSmall", "headerTooLarge", "headerLengthOutOfBounds", "headerNotUTF8", "headerNotJSON",
            "headerNotObject", "duplicateKey", "malformedTensorEntry", "unknownDtype", "invalidShape",
            "offsetsReversed", "byteLengthMismatch", "sizeOverflow", "subByteNotWholeBytes", "gapOrOverlap",
            "dataSectionMismatch", "metadataNotStringMap", "gitLFSPointer", "htmlPage", "indexMalformed",
            "shardMissing", "tensorMissingFromShard", "tensorInTwoShards", "shardPathEscapes", "tensorNotInIndex",
        ]
        #expect(rules == Set(all))
    }

    @Test(arguments: expected.map(\.file))
    func eachFileFailsWithItsRule(file: String) throws {
        let rule = Self.expected.first { $0.file == file }!.rule
        let path = Fixtures.path("malformed/" + file)
        do {
            let checkpoint = try Checkpoint.open(path)
            Issue.record("\(file) opened with \(checkpoint.tensors.count) tensors; expected \(rule)")
        } catch {
            let problem = try #require(error.problem as? SafetensorsError, "\(file): \(error)")
            #expect(problem.identifier == rule, "\(file): \(problem)")
            // The message names the file it is about.
            #expect(error.description.hasPrefix(path))
            #expect(!error.description.contains("\n"))
        }
    }
}
