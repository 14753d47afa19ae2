import Foundation
import MoECkptForward
import MoECkptTensors
import MoECkptTestSupport
import Testing

@testable import MoECkptArchitectures
@testable import MoECkptFormats
@testable import MoECkptModels

/// A family defined here, outside the library: the protocol and a registry are all it needs to be
/// described, loaded in its layout, exported to another and run.
struct ToyRouter: Architecture {
    static let modelType = "toy_router"
    var width: Int
    var experts: Int

    init(configJSON f: inout ConfigFields) {
        width = f.count("width")
        experts = f.count("experts")
    }

    var configJSON: JSONObject {
        JSONObject([("model_type", .string(Self.modelType)), ("width", .integer(width)), ("experts", .integer(experts))])
    }

    var inconsistencies: [String] { [] }
    var canonicalTensors: [TensorRequirement] { [TensorRequirement(name: "router", shape: [experts, width])] }

    static let externalLayouts = [
        NamingLayout(key: "toy", title: "toy state_dict", entries: [LayoutEntry("gate.weight", "router")]),
        NamingLayout(key: "toy-other", title: "toy, other tool", entries: [LayoutEntry("blk.router", "router")]),
    ]

    func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        ToyRouterForward(width: width, experts: experts, router: try WeightReader.f32(model.tensor("router")!))
    }
}

/// Router logits x Rᵀ, in plain loops.
struct ToyRouterForward: ForwardPass {
    let width: Int
    let experts: Int
    let router: [Float]

    var input: InputKey { .inputs }
    func bytesNeeded(input shape: [Int], threads: Int) -> Int? { 1024 }

    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        guard case .values(let x) = input, x.columns == width else { throw .badInput("inputs must be [rows, \(width)]") }
        var logits = [Float](repeating: 0, count: x.rows * experts)
        for r in 0..<x.rows {
            for e in 0..<experts {
                for c in 0..<width { logits[r * experts + e] += x.values[r * width + c] * router[e * width + c] }
            }
        }
        return [.routerLogits: HostTensor(shape: [x.rows, experts], values: logits)]
    }
}

struct RegistryTests {
    static let registry = ArchitectureRegistry(ArchitectureRegistry.standard.types + [ToyRouter.self])

    /// A toy checkpoint: config.json and gate.weight [2, 3] = [[1, 2, 3], [-1, 0, 1]].
    static func writeToy(in dir: TemporaryDirectory) throws -> String {
        let path = dir.file("toy")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try #"{"model_type": "toy_router", "width": 3, "experts": 2}"#.write(
            toFile: path + "/config.json", atomically: true, encoding: .utf8)
        let values: [Float] = [1, 2, 3, -1, 0, 1]
        let tensor = TensorToWrite(name: "gate.weight", dtype: .f32, shape: [2, 3], byteCount: 24) {
            (sink: any ByteSink) throws(FileError) in
            let result = values.withUnsafeBytes { raw in Result { () throws(FileError) in try sink.write(raw) } }
            try result.get()
        }
        let file = try OutputFile(creating: path + "/model.safetensors")
        try SafetensorsWriter.write([tensor], metadata: [:], to: file)
        try file.close()
        return path
    }

    @Test func aFamilyOutsideTheLibraryIsDescribedLoadedExportedAndRun() throws {
        let dir = try TemporaryDirectory()
        let loader = ModelLoader(registry: Self.registry)
        let model = try loader.load(try Self.writeToy(in: dir))
        #expect(model.architecture.isSame(as: try Self.registry.read(configJSON: ConfigFields.object(model.architecture.configJSONText))))
        #expect(model.layout.key == "toy" && model.tensors.map(\.name) == ["router"])
        let exported = try LayoutMapper.export(model.tensors, architecture: model.architecture, layout: ToyRouter.layouts[1])
        #expect(exported.map(\.name) == ["blk.router"] && exported[0].rope.copyBytes() == model.tensors[0].rope.copyBytes())

        let forward = try model.architecture.forwardPass(model)
        let outputs = try forward.run(.values(HostTensor(shape: [1, 3], values: [1, 1, 2])), threads: 1, auxLosses: false)
        #expect(outputs[.routerLogits] == HostTensor(shape: [1, 2], values: [9, 1]))
    }

    @Test func theStandardRegistryDoesNotKnowTheToy() throws {
        let dir = try TemporaryDirectory()
        let path = try Self.writeToy(in: dir)
        #expect(throws: FileError.self) { try ModelLoader.standard.load(path) }
        #expect(throws: ModelConfigError.unknownModelType("toy_router", known: ArchitectureRegistry.standard.modelTypes)) {
            try ArchitectureRegistry.standard.read(configJSON: ConfigFields.object(#"{"model_type": "toy_router"}"#))
        }
        #expect(Self.registry.layout("toy-other") != nil && ArchitectureRegistry.standard.layout("toy-other") == nil)
    }

    @Test func everyStandardLayoutKeyIsUniqueAndEveryFamilyHasACanonicalLayoutLast() {
        let keys = ArchitectureRegistry.standard.layoutKeys
        #expect(Set(keys).count == keys.count && keys.count == Set(ArchitectureRegistry.standard.layouts.map(\.key)).count)
        for type in ArchitectureRegistry.standard.types {
            let own = type.layouts.map(\.key)
            #expect(Set(own).count == own.count, "\(type.modelType)")
            #expect(type.layouts.last?.key == .canonical, "\(type.modelType)")
        }
    }

    @Test func outputKeysReadBackAsWritten() {
        let keys: [OutputKey] = [.logits, .outputs, .auxLoss, .routerZLoss, .routerLogits, .layerRouterLogits(3), .hiddenStates(12)]
        for key in keys { #expect(OutputKey(key.description) == key) }
        #expect(OutputKey("hidden_states.x") == nil && OutputKey("hidden_states.-1") == nil && OutputKey("weights") == nil)
        #expect(OutputKey("router_logits.7") == .layerRouterLogits(7))
    }
}
