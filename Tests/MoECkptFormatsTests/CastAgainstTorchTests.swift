import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkpt

/// `convert --dtype` against torch's `Tensor.to` (fixtures/casts, made by scripts/make_fixtures.py).
struct CastAgainstTorchTests {
    static func isNaN(_ bits: UInt64, _ dtype: DType) -> Bool {
        switch dtype {
        case .f32: return bits & 0x7FFF_FFFF > 0x7F80_0000
        case .f16: return bits & 0x7FFF > 0x7C00
        case .bf16: return bits & 0x7FFF > 0x7F80
        default: return false
        }
    }

    /// Equal bit for bit, NaNs included.
    static func sameValues(_ a: StoredTensor, _ b: StoredTensor) -> Bool {
        guard a.dtype == b.dtype, a.shape == b.shape, a.byteCount == b.byteCount else { return false }
        guard Cast.targets.contains(a.dtype), let width = a.dtype.byteWidth else { return Array(a.bytes) == Array(b.bytes) }
        func element(_ t: StoredTensor, _ i: Int) -> UInt64 {
            (0..<width).reduce(0) { $0 | UInt64(t.bytes[i * width + $1]) << (8 * $1) }
        }
        return (0..<a.elementCount).allSatisfy { i in
            let (x, y) = (element(a, i), element(b, i))
            return x == y
        }
    }

    @Test(arguments: ["f32", "f16", "bf16"])
    func tinyMixtralCastMatchesTorchByteForByte(target: String) throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("cast.safetensors")
        _ = try Converter.convert(
            Fixtures.path("safetensors/tiny-mixtral/model.safetensors"), to: out,
            options: ConvertOptions(dtype: DType(userSpelling: target)))
        #expect(try fileBytes(out) == fileBytes(Fixtures.path("casts/tiny-mixtral-\(target).safetensors")))
    }

    @Test(arguments: ["f32", "f16", "bf16"])
    func everyDtypeCastsLikeTorch(target: String) throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("cast.safetensors")
        let result = try Converter.convert(
            Fixtures.path("safetensors/all_dtypes.safetensors"), to: out,
            options: ConvertOptions(dtype: DType(userSpelling: target)))
        #expect(result.uncastable == ["f4"])
        let ours = try Checkpoint.open(out)
        let torch = try Checkpoint.open(Fixtures.path("casts/all_dtypes-\(target).safetensors"))
        #expect(Set(ours.tensors.map(\.name)) == Set(torch.tensors.map(\.name)))
        for reference in torch.tensors {
            let tensor = try #require(ours.tensor(named: reference.name))
            #expect(Self.sameValues(tensor, reference), "\(reference.name): \(tensor.dtype) vs \(reference.dtype)")
        }
    }
}
