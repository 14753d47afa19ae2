import Testing

@testable import MoECkptFormats

struct JSONParserTests {
    @Test func parsesNestedValuesInOrder() throws {
        let value = try JSONParser.parse(#" {"b": [1, -2.5e3, true, null], "a": {"x": "y"}} "#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object.keys == ["b", "a"])
        #expect(object["b"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .null]))
        #expect(
            object["a"]
                == .object(
                    {
                        var o = JSONObject(); o.append("x", .string("y")); return o
                    }()))
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

    /// The plain-entry reader takes only the plain form and leaves everything else, unread, to the
    /// general parser, so that a header's errors are the same on either path.
    @Test func plainTensorEntriesAndTheirFallback() throws {
        let plain = [
            (#"{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}"#, ("F32", [2, 3], [0, 24])),
            (#" { "data_offsets" : [ 0 , 24 ] , "shape" : [2, 3], "dtype" : "F32" } "#, ("F32", [2, 3], [0, 24])),
            (#"{"dtype":"U8","shape":[],"data_offsets":[5]}"#, ("U8", [], [5])),
        ]
        for (text, expected) in plain {
            var found: JSONParser.PlainTensorEntry?
            var bytes = "{\"t\":" + text + "}"
            try bytes.withUTF8 { buffer in
                _ = try JSONParser.forEachMember(
                    of: UnsafeRawBufferPointer(buffer),
                    parsing: { (_: String, parser: inout JSONParser) throws(JSONError) -> Bool in
                        found = parser.plainTensorEntry()
                        if found == nil { _ = try parser.value() }
                        return true
                    })
            }
            #expect(found?.dtype == expected.0 && found?.shape == expected.1 && found?.offsets == expected.2, "\(text)")
        }
        let others = [
            #"{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}"#, #"{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}"#,
            #"{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}"#, #"{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}"#,
            #"{"dtype":"F\u0033\u0032","shape":[-2],"data_offsets":[0,8]}"#, #"[1]"#, #"{"dtype":"F32","shape":[2]}"#,
        ]
        for text in others {
            var found: JSONParser.PlainTensorEntry?
            var bytes = "{\"t\":" + text + "}"
            _ = try? bytes.withUTF8 { buffer in
                try JSONParser.forEachMember(
                    of: UnsafeRawBufferPointer(buffer),
                    parsing: { (_: String, parser: inout JSONParser) throws(JSONError) -> Bool in
                        found = parser.plainTensorEntry()
                        if found == nil { _ = try parser.value() }  // the general parser reads it from the same place
                        return true
                    })
            }
            #expect(found == nil, "\(text)")
        }
    }
}
