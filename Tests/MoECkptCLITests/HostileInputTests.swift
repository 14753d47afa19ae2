import Foundation
import MoECkpt
import MoECkptTestSupport
import Testing

/// Regression tests for the hostile-input review (issue 12): each test builds the hostile file or
/// file-system state and checks the rule of docs/SECURITY.md that it breaks.
@Suite(.serialized)
struct HostileInputTests {
    /// A copy of a fixture model directory that a test may damage.
    static func copyModel(_ fixture: String, into dir: TemporaryDirectory, as name: String = "model") throws -> String {
        let target = dir.file(name)
        try FileManager.default.copyItem(atPath: Fixtures.path(fixture), toPath: target)
        return target
    }

    /// Every file under `path` with its bytes, following no links.
    static func snapshot(_ path: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let name = enumerator?.nextObject() as? String {
            let full = (path as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[name] = try fileBytes(full)
            }
        }
        return files
    }

    // 1. Stale-partial cleanup never follows a symlink and removes only moeckpt's own partials.
    @Test func staleCleanupNeverFollowsSymlinks() throws {
        let dir = try TemporaryDirectory()
        let victim = dir.file("victim")
        try FileManager.default.createDirectory(atPath: victim + "/sub", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: victim + "/a"))
        try Data("y".utf8).write(to: URL(fileURLWithPath: victim + "/sub/b"))
        let before = try Self.snapshot(victim)
        let input = Fixtures.path("models/tiny-mixtral/model.safetensors")
        for output in ["out.safetensors", "sharded"] {
            // A link planted under a stale partial name, and a partial directory without moeckpt's
            // marker holding a link to the victim: neither is followed.
            try FileManager.default.createSymbolicLink(
                atPath: dir.file(".\(output).moeckpt-partial-999999"),
                withDestinationPath: victim)
            let unmarked = dir.file(".\(output).moeckpt-partial-999998")
            try FileManager.default.createDirectory(atPath: unmarked, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: unmarked + "/link", withDestinationPath: victim)
            // A marked partial directory (what a killed moeckpt leaves) holding a link: removed,
            // the link unlinked, its target untouched.
            let marked = dir.file(".\(output).moeckpt-partial-999997")
            try FileManager.default.createDirectory(atPath: marked, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: marked + "/.moeckpt-partial", contents: Data())
            _ = FileManager.default.createFile(atPath: marked + "/model-00001-of-00002.safetensors", contents: Data("partial".utf8))
            try FileManager.default.createSymbolicLink(atPath: marked + "/link", withDestinationPath: victim)

            let extra = output == "sharded" ? ["--max-shard-size", "30KB"] : []
            let result = try CLI.run(["convert", input, dir.file(output), "--quiet"] + extra)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try Self.snapshot(victim) == before, "\(output): the victim directory changed")
            #expect(FileManager.default.fileExists(atPath: unmarked + "/link"))
            #expect(!FileManager.default.fileExists(atPath: marked))
            #expect(!FileManager.default.fileExists(atPath: dir.file(output) + "/.moeckpt-partial"))
        }
    }

    // 2. No command writes over a file it reads, whatever path or link names it.
    @Test func runRefusesToOverwriteItsInputs() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.copyModel("models/tiny-mixtral", into: dir)
        try FileManager.default.createSymbolicLink(atPath: dir.file("alias.safetensors"), withDestinationPath: model + "/model.safetensors")
        try FileManager.default.linkItem(atPath: model + "/expected.safetensors", toPath: dir.file("hardlink.safetensors"))
        let before = try Self.snapshot(model)
        for output in [
            model + "/model.safetensors", model + "/expected.safetensors", model + "/config.json",
            dir.file("alias.safetensors"), dir.file("hardlink.safetensors"),
        ] {
            let result = try CLI.run(["run", model, "--input", model + "/expected.safetensors", "--output", output])
            #expect(result.status == 2, "\(output)")
            #expect(result.stderr.contains("refusing to write over it"), "\(output): \(result.stderr)")
        }
        #expect(try Self.snapshot(model) == before)
        let fine = try CLI.run(["run", model, "--input", model + "/expected.safetensors", "--output", dir.file("out.safetensors")])
        #expect(fine.status == 0, "\(fine.stderr)")
    }

    // 3. A virtual dataset may draw only on its own file.
    @Test func virtualDatasetsDrawingOnOtherFilesAreRefused() throws {
        let dir = try TemporaryDirectory()
        for (file, source) in [("vds-relative.h5", "vds-source.h5"), ("vds-absolute.h5", "/nonexistent/moeckpt/missing.h5")] {
            for command in [
                ["inspect", Fixtures.path("hostile/" + file)],
                ["convert", Fixtures.path("hostile/" + file), dir.file("out.safetensors")],
            ] {
                let result = try CLI.run(command)
                #expect(result.status == 2, "\(command)")
                #expect(
                    result.stderr
                        == "moeckpt: error: \(Fixtures.path("hostile/" + file)): dataset /weight is virtual, drawing on the file \"\(source)\"; moeckpt reads only data inside the file\n"
                )
            }
        }
        #expect(dir.contents().isEmpty)
        let same = try CLI.run(["convert", Fixtures.path("hostile/vds-same-file.h5"), dir.file("same.safetensors"), "--quiet"])
        #expect(same.status == 0, "\(same.stderr)")
        let weight = try #require(try Checkpoint.open(dir.file("same.safetensors")).tensor(named: "weight"))
        #expect(Array(weight.bytes.bindMemory(to: Float.self)) == (0..<8).map { Float($0) * 0.5 })
    }

    // 7. Two sources mapping to one tensor name are refused, naming both.
    @Test func hdf5NameCollisionsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let input = Fixtures.path("hostile/name-collision.h5")
        let result = try CLI.run(["convert", input, dir.file("out.safetensors")])
        #expect(result.status == 2)
        #expect(
            result.stderr.contains("datasets /a/b and /a.b both map to the tensor name a.b")
                || result.stderr.contains("datasets /a.b and /a/b both map to the tensor name a.b"), "\(result.stderr)")
        #expect(dir.contents().isEmpty)
    }

    /// Whether address-space limits can be tried: util-linux's prlimit is there and the build is
    /// not under the address sanitizer (whose shadow memory needs terabytes of address space).
    static let addressSpaceLimitsWork =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit")
        && dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil

    /// Runs the CLI under an address-space limit (util-linux's prlimit), as a process with less
    /// memory than the machine would.
    static func runLimited(addressSpace bytes: Int, _ arguments: [String]) throws -> CLI.Result {
        try CLI.run(arguments, under: ["/usr/bin/prlimit", "--as=\(bytes)"])
    }

    // 6. A tiny file that expands into 512 MiB converts chunk by chunk under a 400 MB address
    // space, to safetensors and to gzip HDF5, with every value right.
    @Test(.enabled(if: addressSpaceLimitsWork, "needs prlimit and a build without the address sanitizer"))
    func expandingHDF5DatasetsStreamInBoundedMemory() throws {
        let dir = try TemporaryDirectory()
        let input = Fixtures.path("hostile/gzip-fill-512MiB.h5")
        for output in ["out.safetensors", "out.h5"] {
            let extra = output.hasSuffix(".h5") ? ["--hdf5-compression", "gzip"] : []
            let result = try Self.runLimited(addressSpace: 400_000_000, ["convert", input, dir.file(output), "--quiet"] + extra)
            #expect(result.status == 0, "\(output): \(result.stderr)")
            let written = try Checkpoint.open(dir.file(output))
            let weight = try #require(written.tensor(named: "weight"))
            #expect(weight.shape == [1 << 27] && weight.dtype == .f32)
            if output.hasSuffix(".safetensors") {
                let values = weight.bytes.bindMemory(to: Float.self)
                #expect(values.allSatisfy { $0 == 0.25 })
            }
        }
        #expect(dir.contents() == ["out.h5", "out.safetensors"])
    }

    // 6. Memory checks use the limits this process has, not the machine's memory: outputs that
    // would not fit under a 400 MB address space are refused with one line, not a crash.
    @Test(.enabled(if: addressSpaceLimitsWork, "needs prlimit and a build without the address sanitizer"))
    func memoryChecksUseTheProcessLimits() throws {
        let dir = try TemporaryDirectory()
        let tokens = 1_000_000
        let ids = TensorToWrite(name: "input_ids", dtype: .i64, shape: [1, tokens], byteCount: 8 * tokens) {
            (file: any ByteSink) throws(FileError) in
            try file.write([UInt8](repeating: 0, count: 8 * tokens))
        }
        let file = try OutputFile(creating: dir.file("ids.safetensors"))
        try SafetensorsWriter.write([ids], metadata: [:], to: file)
        try file.close()
        let result = try Self.runLimited(
            addressSpace: 400_000_000,
            [
                "run", Fixtures.path("models/tiny-mixtral"),
                "--input", dir.file("ids.safetensors"),
                "--output", dir.file("out.safetensors"),
            ])
        #expect(result.status == 2)
        #expect(
            result.stderr.hasPrefix("moeckpt: error: \(dir.file("ids.safetensors")): ") && result.stderr.contains("more memory"),
            "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(dir.contents() == ["ids.safetensors"])
    }

    /// The children of a process (from /proc).
    static func children(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0) }
    }

    static func isAlive(_ pid: Int32) -> Bool {
        // A zombie is not working; its state letter is after the name in parentheses.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }

    // 10. The HDF5 writer child dies with its parent: after kill -9 and after SIGINT/TERM/HUP.
    @Test func theHDF5WriterChildDiesWithItsParent() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("in.safetensors")
        try InterruptionTests.makeLargeInput(at: input)
        var checked = 0
        for sig in [SIGKILL, SIGTERM, SIGINT, SIGHUP] {
            let process = try CLI.start(["convert", input, dir.file("out.h5"), "--hdf5-compression", "gzip:9", "--quiet"])
            var child: Int32?
            for _ in 0..<400 where child == nil {
                child = Self.children(of: process.processIdentifier).first
                if child == nil { Thread.sleep(forTimeInterval: 0.005) }
            }
            guard let child else {  // finished before a child was seen
                process.waitUntilExit()
                try? FileManager.default.removeItem(atPath: dir.file("out.h5"))
                continue
            }
            kill(process.processIdentifier, sig)
            process.waitUntilExit()
            var gone = false
            for _ in 0..<200 where !gone {
                gone = !Self.isAlive(child)
                if !gone { Thread.sleep(forTimeInterval: 0.01) }
            }
            #expect(gone, "signal \(sig): the writer child \(child) outlived its parent")
            #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == sig)
            if sig != SIGKILL { #expect(dir.contents() == ["in.safetensors"], "signal \(sig) left \(dir.contents())") }
            for leftover in dir.contents() where leftover != "in.safetensors" {
                try? FileManager.default.removeItem(atPath: dir.file(leftover))
            }
            checked += 1
        }
        #expect(checked >= 3, "the convert finished before its child could be seen")
    }

    // 4. Config values at the documented limit are refused from counts alone (no expansion):
    // under a 1 GB address space (the old behaviour allocated 7.6 GB), one line, exit 2.
    @Test(.enabled(if: addressSpaceLimitsWork, "needs prlimit and a build without the address sanitizer"))
    func configsAtTheCountLimitAreRefusedWithoutExpanding() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.copyModel("models/tiny-mixtral", into: dir)
        let config = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        for key in ["num_hidden_layers", "num_local_experts"] {
            let edited = config.replacingOccurrences(of: "\"\(key)\": ", with: "\"\(key)\": 16777216, \"was_\(key)\": ")
            try edited.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
            let inspect = try Self.runLimited(addressSpace: 1 << 30, ["inspect", model])
            #expect(inspect.status == 0 && inspect.stdout.contains("the description plans"), "\(key): \(inspect.stderr)")
            for command in [["verify", model], ["convert", model, dir.file("out"), "--names", "hf-fused"]] {
                let result = try Self.runLimited(addressSpace: 1 << 30, command)
                #expect(result.status == 2, "\(key) \(command[0])")
                #expect(
                    result.stderr.contains("the description plans") && result.stderr.split(separator: "\n").count == 1,
                    "\(key) \(command[0]): \(result.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("out")))
    }

    static func writeIDs(_ path: String, tokens: Int, vocabulary: Int) throws {
        let ids = TensorToWrite(name: "input_ids", dtype: .i64, shape: [1, tokens], byteCount: 8 * tokens) {
            (file: any ByteSink) throws(FileError) in
            let values = (0..<tokens).map { Int64(($0 * 7919) % vocabulary) }
            let result = values.withUnsafeBytes { raw in Result { () throws(FileError) in try file.write(raw) } }
            try result.get()
        }
        let file = try OutputFile(creating: path)
        try SafetensorsWriter.write([ids], metadata: [:], to: file)
        try file.close()
    }

    // 5. A sequence longer than the whole-sequence limit runs with attention in blocks of queries.
    @Test func longSequencesRunWithAttentionInBlocks() throws {
        let dir = try TemporaryDirectory()
        try Self.writeIDs(dir.file("ids.safetensors"), tokens: 600, vocabulary: 64)
        let result = try CLI.run([
            "run", Fixtures.path("models/tiny-mixtral"), "--input", dir.file("ids.safetensors"),
            "--output", dir.file("out.safetensors"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let logits = try #require(try Checkpoint.open(dir.file("out.safetensors")).tensor(named: "logits"))
        #expect(logits.shape == [1, 600, 64])
        #expect(logits.bytes.bindMemory(to: Float.self).allSatisfy { $0.isFinite })
    }

    /// A safetensors file of the given tensors (F32 zeros) and metadata.
    static func writeSafetensors(_ path: String, tensors: [(String, [Int])], metadata: [String: String] = [:]) throws {
        let writes = tensors.map { name, shape in
            TensorToWrite(name: name, dtype: .f32, shape: shape, byteCount: 4 * shape.reduce(1, *)) {
                (file: any ByteSink) throws(FileError) in try file.write([UInt8](repeating: 0, count: 4 * shape.reduce(1, *)))
            }
        }
        let file = try OutputFile(creating: path)
        try SafetensorsWriter.write(writes, metadata: metadata, to: file)
        try file.close()
    }

    // 8. Index entries are plain file names in the index's directory; a shard that is itself a
    // link is followed (the Hugging Face cache's layout).
    @Test func shardNamesWithDirectoryPartsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let outside = dir.file("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Self.writeSafetensors(outside + "/x.safetensors", tensors: [("b", [2])])
        let model = dir.file("model")
        try FileManager.default.createDirectory(atPath: model + "/sub", withIntermediateDirectories: true)
        try Self.writeSafetensors(model + "/a.safetensors", tensors: [("a", [2])])
        try Self.writeSafetensors(model + "/sub/y.safetensors", tensors: [("b", [2])])
        try FileManager.default.createSymbolicLink(atPath: model + "/link", withDestinationPath: outside)
        for shard in ["link/x.safetensors", "sub/y.safetensors", "./a.safetensors", "..", "/etc/passwd", "a.safetensors\u{0}x"] {
            let quoted = shard.replacingOccurrences(of: "\u{0}", with: "\\u0000")
            let index = "{\"weight_map\": {\"a\": \"a.safetensors\", \"b\": \"\(quoted)\"}}"
            try index.write(toFile: model + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
            let result = try CLI.run(["inspect", model])
            #expect(result.status == 2, "\(shard)")
            let shown = shard.replacingOccurrences(of: "\u{0}", with: "\\0")
            #expect(
                result.stderr.contains("index names shard \"\(shown)\", which is not a plain file name in the index's directory"),
                "\(shard): \(result.stderr)")
        }
        // The Hugging Face cache: snapshots/REV/x.safetensors -> ../../blobs/HASH.
        let blobs = dir.file("cache/blobs"), snapshot = dir.file("cache/snapshots/rev")
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        try Self.writeSafetensors(blobs + "/0123abcd", tensors: [("a", [2])])
        try Self.writeSafetensors(blobs + "/4567ef01", tensors: [("b", [2])])
        try FileManager.default.createSymbolicLink(
            atPath: snapshot + "/model-00001-of-00002.safetensors", withDestinationPath: "../../blobs/0123abcd")
        try FileManager.default.createSymbolicLink(
            atPath: snapshot + "/model-00002-of-00002.safetensors", withDestinationPath: "../../blobs/4567ef01")
        let index = "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00002-of-00002.safetensors\"}}"
        try index.write(toFile: snapshot + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        let cached = try CLI.run(["inspect", snapshot])
        #expect(cached.status == 0, "\(cached.stderr)")
    }

    // 11. Names, dtypes and values from files reach the terminal escaped: no row can be forged,
    // no message cut, in inspect's table, its metadata, verify's table and every error.
    @Test func controlCharactersFromFilesAreEscaped() throws {
        let dir = try TemporaryDirectory()
        let forged = "a\nb.weight  F32  [1]  1  4\u{1B}[2J\u{0}"
        try Self.writeSafetensors(
            dir.file("names.safetensors"), tensors: [(forged, [2]), ("ok", [1])],
            metadata: ["key\nforged": "value\u{1B}[31m"])
        let inspect = try CLI.run(["inspect", dir.file("names.safetensors")])
        #expect(inspect.status == 0)
        #expect(!inspect.stdout.contains("\u{1B}") && !inspect.stdout.contains("\u{0}"))
        #expect(inspect.stdout.contains("a\\nb.weight  F32  [1]  1  4\\u{1B}[2J\\0"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("key\\nforged"))
        // An error that quotes a name: one line, escaped, nothing cut.
        let index = "{\"weight_map\": {\"x\\ny\\u001b[2J\\u0000z\": \"names.safetensors\"}}"
        try index.write(toFile: dir.file("model.safetensors.index.json"), atomically: true, encoding: .utf8)
        let error = try CLI.run(["inspect", dir.file("model.safetensors.index.json")])
        #expect(error.status == 2)
        #expect(error.stderr.split(separator: "\n").count == 1 && !error.stderr.contains("\u{1B}"), "\(error.stderr)")
        #expect(error.stderr.contains("x\\ny\\u{1B}[2J\\0z"), "\(error.stderr)")
    }

    // 13. config.json has a size limit: a larger one is refused unread, in one line.
    @Test func oversizedConfigsAreRefusedUnread() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.copyModel("models/tiny-mixtral", into: dir)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: model + "/config.json"))
        try handle.truncate(atOffset: UInt64(ModelLoader.descriptionLimitBytes) + 1)  // sparse: no disk used
        try handle.close()
        let result = try CLI.run(["verify", model])
        #expect(result.status == 2)
        #expect(
            result.stderr
                == "moeckpt: error: \(model)/config.json: is \(ModelLoader.descriptionLimitBytes + 1) bytes, more than the \(ModelLoader.descriptionLimitBytes) bytes such a file may have; refusing to read it\n"
        )
    }

    // 15. Tolerances are finite and non-negative, from the expected file or the command line.
    @Test func infiniteOrNegativeTolerancesAreRefused() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.copyModel("models/basic_moe", into: dir)
        let expected = try Checkpoint.open(model + "/expected.safetensors")
        for (key, value) in [("atol", "inf"), ("rtol", "nan"), ("atol", "-1"), ("rtol", "1e999")] {
            let writes = expected.tensors.map { tensor in
                TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.byteCount) {
                    (file: any ByteSink) throws(FileError) in try file.write(tensor.bytes)
                }
            }
            let path = dir.file("expected-\(key).safetensors")
            try? FileManager.default.removeItem(atPath: path)
            let file = try OutputFile(creating: path)
            try SafetensorsWriter.write(writes, metadata: expected.metadata.merging([key: value]) { $1 }, to: file)
            try file.close()
            let result = try CLI.run(["verify", model, "--expected", path])
            #expect(result.status == 2, "\(key)=\(value)")
            #expect(result.stderr.contains("metadata \(key) = \"\(value)\" is not a finite, non-negative number"), "\(result.stderr)")
        }
        for flag in [["--atol", "inf"], ["--rtol", "nan"], ["--atol=-0.5"]] {
            let result = try CLI.run(["verify", model] + flag)
            #expect(result.status == 2 && result.stderr.contains("finite, non-negative"), "\(flag): \(result.stderr)")
        }
    }

    // 16. An input truncated while mapped is named in the error, whatever reads it (a copy's
    // write(2), a cast's load, the HDF5 writer's child).
    @Test func anInputTruncatedWhileReadIsNamed() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("in.safetensors")
        try InterruptionTests.makeLargeInput(at: input)
        var named = 0
        for (output, extra) in [("out.safetensors", [String]()), ("cast.safetensors", ["--dtype", "f16"]), ("out.h5", [])] {
            for delay in [0.05, 0.1, 0.2, 0.4] {
                let victim = dir.file("victim.safetensors")
                try? FileManager.default.removeItem(atPath: victim)
                try FileManager.default.copyItem(atPath: input, toPath: victim)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: CLI.executable)
                process.arguments = ["convert", victim, dir.file(output), "--quiet"] + extra
                let errors = Pipe()
                process.standardError = errors
                try process.run()
                Thread.sleep(forTimeInterval: delay)
                truncate(victim, 4096)
                process.waitUntilExit()
                let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(process.terminationReason == .exit)
                try? FileManager.default.removeItem(atPath: dir.file(output))
                // Truncated before it was opened: an ordinary refusal; try a later moment.
                guard process.terminationStatus == 2, !stderr.contains("truncated file or trailing bytes") else { continue }
                #expect(
                    stderr == "moeckpt: error: \(victim): changed while being read (truncated under its memory mapping)\n",
                    "\(output) after \(delay) s: \(stderr)")
                named += 1
                break
            }
        }
        #expect(named >= 2, "the truncation came too late for most outputs")
    }

    // 17. A RoPE type or scaling moeckpt does not implement is refused by name, never ignored.
    @Test func unsupportedRoPEIsRefused() throws {
        let dir = try TemporaryDirectory()
        let model = try Self.copyModel("models/tiny-mixtral", into: dir)
        let config = try String(contentsOfFile: model + "/config.json", encoding: .utf8)
        let cases = [
            (
                "\"rope_type\": \"default\"", "\"rope_type\": \"yarn\", \"factor\": 1e30",
                "rope_parameters rope_type \"yarn\" is not implemented by moeckpt"
            ),
            (
                "\"rope_parameters\": {", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}, \"rope_parameters\": {",
                "rope_scaling rope_type \"linear\" is not implemented by moeckpt"
            ),
            (
                "\"rope_parameters\": {", "\"rope_scaling\": {\"factor\": 2.0}, \"rope_parameters\": {",
                "rope_scaling names no rope_type"
            ),
            ("\"rope_theta\": 1000000.0", "\"rope_theta\": -1.0", "rope_theta (-1.0) must be positive"),
        ]
        for (old, new, message) in cases {
            let edited = config.replacingOccurrences(of: old, with: new)
            try edited.write(toFile: model + "/config.json", atomically: true, encoding: .utf8)
            let result = try CLI.run(["verify", model])
            #expect(result.status == 2, "\(message)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }
    }

    // 9, 14 and 4 on files written from docs/FORMAT.md by scripts/make_hostile_fixtures.py (not
    // by moeckpt): what inspect --check and convert say of each.
    @Test(arguments: [
        ("native-format-gguf.moeckpt", "header is malformed: \"format\" must be \"moeckpt\""),
        ("native-checksum-md5.moeckpt", "header is malformed: \"checksum\" must be \"crc32c\""),
        ("native-layout-evil.moeckpt", "header is malformed: \"layout\" must be \"canonical\" when present"),
        ("native-version-mismatch.moeckpt", "header is malformed: \"version\" must be [1, 0], the preamble's version"),
        ("native-uppercase-crc.moeckpt", "header is malformed: tensor \"embed\" has no crc32c of 8 lowercase hex digits"),
        ("native-nonzero-padding.moeckpt", "padding before tensor \"layers.0.attn.q\" is not zero"),
        ("native-flipped-bit.moeckpt", "tensor \"embed\" checksum mismatch"),
        ("native-huge-layers.moeckpt", "the description plans 167772163 tensors but the checkpoint holds 13"),
        ("native-huge-experts.moeckpt", "the description plans 872415356 parameters"),
    ])
    func independentlyWrittenNativeFilesAreJudgedByTheSpecification(file: String, message: String) throws {
        let dir = try TemporaryDirectory()
        let input = Fixtures.path("hostile/" + file)
        let convert = try CLI.run(["convert", input, dir.file("out.safetensors")])
        #expect(convert.status == 2)
        #expect(convert.stderr.hasPrefix("moeckpt: error: \(input): ") && convert.stderr.contains(message), "\(convert.stderr)")
        #expect(dir.contents().isEmpty)
        if file.contains("flipped") || file.contains("padding") {  // run refuses damaged weights too
            let run = try CLI.run([
                "run", input, "--input", Fixtures.path("models/tiny-mixtral/expected.safetensors"),
                "--output", dir.file("run.safetensors"),
            ])
            #expect(run.status == 2 && run.stderr.contains(message), "\(run.stderr)")
        }
        let inspect = try CLI.run(["inspect", "--check", input])
        if file.contains("huge") {
            #expect(inspect.status == 0 && inspect.stdout.contains("does not load: " + message), "\(inspect.stdout)")
        } else {
            #expect(inspect.status == 2 && inspect.stderr.contains(message), "\(inspect.stderr)")
        }
    }

    @Test func anIndependentlyWrittenSoundNativeFileConverts() throws {
        let dir = try TemporaryDirectory()
        let input = Fixtures.path("hostile/native-sound.moeckpt")
        #expect(try CLI.run(["inspect", "--check", input]).status == 0)
        let result = try CLI.run(["convert", input, dir.file("hf"), "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("hf/config.json")))
    }
}
