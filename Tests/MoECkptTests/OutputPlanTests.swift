import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// The plan `convert` makes from the destination and the options, before reading anything.
struct OutputPlanTests {
    static func plan(_ destination: String, _ options: ConvertOptions = ConvertOptions()) throws -> OutputPlan.Container {
        try OutputPlan(destination: destination, options: options).container
    }

    @Test func eachDestinationNamesItsContainer() throws {
        #expect(try Self.plan("out.safetensors") == .safetensorsFile)
        #expect(try Self.plan("out") == .safetensorsDirectory(maxShardBytes: nil))
        #expect(try Self.plan("out", ConvertOptions(names: "mistral")) == .safetensorsDirectory(maxShardBytes: nil))
        #expect(try Self.plan("out.safetensors", ConvertOptions(maxShardBytes: 100)) == .safetensorsDirectory(maxShardBytes: 100))
        #expect(try Self.plan("out.h5") == .hdf5(.none))
        #expect(try Self.plan("out.hdf5", ConvertOptions(hdf5Compression: .gzip(level: 6))) == .hdf5(.gzip(level: 6)))
        #expect(try Self.plan("out.moeckpt") == .native)
    }

    @Test func optionsThatDoNotFitTheDestinationAreRefused() {
        #expect(throws: OutputPlanError.namesNeedDirectory) { try Self.plan("out.safetensors", ConvertOptions(names: "hf")) }
        #expect(throws: OutputPlanError.hdf5IsOneFile) { try Self.plan("out.h5", ConvertOptions(names: "hf")) }
        #expect(throws: OutputPlanError.hdf5IsOneFile) { try Self.plan("out.h5", ConvertOptions(maxShardBytes: 1 << 20)) }
        #expect(throws: OutputPlanError.namesNotForNative) { try Self.plan("out.moeckpt", ConvertOptions(names: "hf")) }
        #expect(throws: OutputPlanError.nativeIsOneFile) { try Self.plan("out.moeckpt", ConvertOptions(maxShardBytes: 1 << 20)) }
        #expect(throws: OutputPlanError.unknownLayout("nope")) { try Self.plan("out", ConvertOptions(names: "nope")) }
        #expect(throws: OutputPlanError.notACastTarget(.i8)) { try Self.plan("out", ConvertOptions(dtype: .i8)) }
    }

    /// A name HDF5 cannot hold is refused before anything is written, naming the destination.
    @Test func anHDF5NameClashNamesTheDestinationAndLeavesNothing() throws {
        let dir = try TemporaryDirectory()
        let input = dir.file("clash.safetensors")
        let tensors = ["a", "a.b"].map { name in
            TensorToWrite(name: name, dtype: .f32, shape: [1], byteCount: 4) { (sink: any ByteSink) throws(FileError) in
                try sink.write([0, 0, 128, 63])
            }
        }
        let file = try OutputFile(creating: input)
        try SafetensorsWriter.write(tensors, metadata: [:], to: file)
        try file.close()
        let output = dir.file("out.h5")
        #expect {
            _ = try Converter.convert(input, to: output)
        } throws: { error in
            (error as? FileError)?.path == output && (error as? FileError)?.problem is HDF5FormatError
        }
        #expect(dir.contents() == ["clash.safetensors"])
    }
}
