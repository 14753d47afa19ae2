import Testing
@testable import MoECkptFormats

struct JSONParserTests {
    @Test func parsesNestedValuesInOrder() throws {
        let value = try JSONParser.parse(#" {"b": [1, -2.5e3, true, null], "a": {"x": "y"}} "#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.keys == ["b", "a"])
        #expect(object["b"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .null]))
        #expect(object["a"] == .object({ var o = JSONObject(); o.append("x", .string("y")); return o }()))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let value = try JSONParser.parse(#""q\" b\\ n\n t\t u\u00e9 \ud83d\ude80 s\/""#)
        #expect(value == .string("q\" b\\ n\n t\t u\u{e9} \u{1F680} s/"))
    }

    @Test func refusesDuplicateKeys() {
        #expect(throws: JSONError.duplicateKey("a")) { try JSONParser.parse(#"{"a": 1, "a": 2}"#) }
    }

    @Test(arguments: [#"{"a" 1}"#, "[1,]", "01", "1.", "-", #""\x""#, "\"\u{01}\"", #""\ud800""#, "{} x", "", "tru"])
    func refusesInvalidJSON(text: String) {
        #expect(throws: JSONError.self) { try JSONParser.parse(text) }
    }

    @Test func capsNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONError.tooDeep(offset: JSONParser.maximumDepth)) { try JSONParser.parse(deep) }
    }

    @Test func exactIntegersOnly() {
        #expect(JSONValue.number("18446744073709551615").nonNegativeInt == nil)
        #expect(JSONValue.number("9223372036854775807").nonNegativeInt == Int.max)
        #expect(JSONValue.number("1e3").nonNegativeInt == nil)
        #expect(JSONValue.number("-1").nonNegativeInt == nil)
    }

    @Test func writesStringsLikeSerdeAndPython() {
        #expect(JSONText.quoted("a\"b\\c\n\u{1F}é") == "\"a\\\"b\\\\c\\n\\u001fé\"")
        #expect(JSONText.quotedASCII("é🚀") == "\"\\u00e9\\ud83d\\ude80\"")
    }
}
