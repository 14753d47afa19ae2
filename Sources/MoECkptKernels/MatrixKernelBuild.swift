import CPlatform
import Glibc
import MoECkptMatrixAVX2
import MoECkptMatrixAVX512

/// The weight dtypes the matrix kernels read in place.
public enum MatrixWeightType: String, Sendable, CaseIterable {
    case f32, bf16
    /// MXFP4 in llama.cpp's `block_mxfp4` layout (`MXFP4Blocks`): 17 bytes per 32 weights.
    case mxfp4
    /// ggml's Q8_0 (`GGMLBlocks`): 34 bytes per 32 weights.
    case q8_0
    /// ggml's Q4_0 (18 bytes per 32 weights), Q4_K (144 per 256) and Q6_K (210 per 256).
    case q4_0, q4_K, q6_K

    /// Weights per block: a row holds whole blocks.
    public var blockSize: Int {
        switch self {
        case .f32, .bf16: 1
        case .mxfp4, .q8_0, .q4_0: 32
        case .q4_K, .q6_K: 256
        }
    }

    /// Bytes of `elements` consecutive weights (for a block type, whole blocks).
    public func bytes(_ elements: Int) -> Int {
        switch self {
        case .f32: 4 * elements
        case .bf16: 2 * elements
        case .mxfp4: elements / 32 * 17
        case .q8_0: elements / 32 * 34
        case .q4_0: elements / 32 * 18
        case .q4_K: elements / 256 * 144
        case .q6_K: elements / 256 * 210
        }
    }

    var avx2: MoECkptMatrixAVX2.WeightFormat {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        case .mxfp4: .mxfp4
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_K: .q4_K
        case .q6_K: .q6_K
        }
    }

    var avx512: MoECkptMatrixAVX512.WeightFormat {
        switch self {
        case .f32: .f32
        case .bf16: .bf16
        case .mxfp4: .mxfp4
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_K: .q4_K
        case .q6_K: .q6_K
        }
    }
}

/// The builds of the matrix kernels (see Sources/MatrixKernels), and which one this CPU runs.
public enum MatrixKernelBuild: String, Sendable, CaseIterable {
    case avx2, avx512

    /// Whether this CPU (and OS) can run the build.
    public var isSupported: Bool {
        switch self {
        case .avx2: CPUFeatures.hasBaseline
        case .avx512: CPUFeatures.hasAVX512
        }
    }

    /// The widest supported build; `MOECKPT_KERNELS=avx2` selects the narrow one (for comparisons).
    public static let selected: MatrixKernelBuild = {
        if let name = getenv("MOECKPT_KERNELS").map({ String(cString: $0) }), let build = MatrixKernelBuild(rawValue: name),
            build.isSupported
        {
            return build
        }
        return CPUFeatures.hasAVX512 ? .avx512 : .avx2
    }()

    public var rowTile: Int {
        switch self {
        case .avx2: MoECkptMatrixAVX2.MatrixProducts.rowTile
        case .avx512: MoECkptMatrixAVX512.MatrixProducts.rowTile
        }
    }

    /// Tokens per panel of the activations (`TokenPanels`).
    public var tokenPanel: Int {
        switch self {
        case .avx2: MoECkptMatrixAVX2.MatrixProducts.tokenPanel
        case .avx512: MoECkptMatrixAVX512.MatrixProducts.tokenPanel
        }
    }

    func multiply(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, validTokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        switch self {
        case .avx2:
            MoECkptMatrixAVX2.MatrixProducts.multiply(
                type.avx2, weight: weight, rows: rows, inputs: inputs, x: x,
                tokens: tokens, validTokens: validTokens, y: y, outputs: outputs)
        case .avx512:
            MoECkptMatrixAVX512.MatrixProducts.multiply(
                type.avx512, weight: weight, rows: rows, inputs: inputs, x: x,
                tokens: tokens, validTokens: validTokens, y: y, outputs: outputs)
        }
    }

    /// Token counts up to this run as dot products (`Linear.multiplyRows`).
    public var maxDotTokens: Int {
        switch self {
        case .avx2: MoECkptMatrixAVX2.MatrixProducts.maxDotTokens
        case .avx512: MoECkptMatrixAVX512.MatrixProducts.maxDotTokens
        }
    }

    func multiplyRows(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        switch self {
        case .avx2:
            MoECkptMatrixAVX2.MatrixProducts.multiplyRows(
                type.avx2, weight: weight, rows: rows, inputs: inputs,
                x: x, tokens: tokens, y: y, outputs: outputs)
        case .avx512:
            MoECkptMatrixAVX512.MatrixProducts.multiplyRows(
                type.avx512, weight: weight, rows: rows, inputs: inputs,
                x: x, tokens: tokens, y: y, outputs: outputs)
        }
    }
}

/// What the CPU can run, asked once.
public enum CPUFeatures {
    /// AVX2, FMA, F16C, BMI: what every module of moeckpt is compiled for.
    public static let hasBaseline = moeckpt_cpu_has_haswell_features() != 0
    /// Everything `-target-cpu znver4` may use (AVX-512 with BF16, VNNI, VBMI...).
    public static let hasAVX512 = moeckpt_cpu_has_znver4_features() != 0
}
