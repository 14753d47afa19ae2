import CKernels
import Glibc

/// The weight dtypes the matrix kernels read in place.
public enum MatrixWeightType: String, Sendable, CaseIterable {
    case f32, bf16, f16
    /// MXFP4 in llama.cpp's `block_mxfp4` layout (`MXFP4Blocks`): 17 bytes per 32 weights.
    case mxfp4
    /// ggml's Q8_0 (`GGMLBlocks`): 34 bytes per 32 weights.
    case q8_0
    /// ggml's Q4_0 (18 bytes per 32 weights), Q4_K (144 per 256), Q5_K (176 per 256) and Q6_K (210
    /// per 256).
    case q4_0, q4_K, q5_K, q6_K
    /// FP8 E4M3 with a scale per block of rows and columns (`BlockScales`; DeepSeek-V3's release).
    case f8e4m3 = "fp8"
    /// MLX's affine codes, 2, 4 or 8 bits, with a scale and a bias per group (`BlockScales.biases`).
    case mlx2 = "mlx-affine2", mlx4 = "mlx-affine4", mlx8 = "mlx-affine8"
    /// MLX's E2M1 codes (mxfp4, nvfp4) with a scale per group (`BlockScales`).
    case mlxE2M1 = "mlx-mxfp4"

    /// Weights per block: a row holds whole blocks.
    public var blockSize: Int {
        switch self {
        case .f32, .bf16, .f16, .f8e4m3, .mlx8: 1
        case .mlx4, .mlxE2M1: 2
        case .mlx2: 4
        case .mxfp4, .q8_0, .q4_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes of `elements` consecutive weights (for a block type, whole blocks).
    public func bytes(_ elements: Int) -> Int {
        switch self {
        case .f32: 4 * elements
        case .bf16, .f16: 2 * elements
        case .f8e4m3, .mlx8: elements
        case .mlx4, .mlxE2M1: elements / 2
        case .mlx2: elements / 4
        case .mxfp4: elements / 32 * 17
        case .q8_0: elements / 32 * 34
        case .q4_0: elements / 32 * 18
        case .q4_K: elements / 256 * 144
        case .q5_K: elements / 256 * 176
        case .q6_K: elements / 256 * 210
        }
    }

    /// Bytes of one row of `inputs` activations converted for ggml's products on this type
    /// (`Arithmetic.ggml`); nil where the type has none (only ggml's Q8_0, Q4_0, Q4_K, Q5_K and
    /// Q6_K, quantized, and BF16, rounded, do) or `inputs` is not a whole number of its blocks.
    public func quantizedActivationBytes(_ inputs: Int) -> Int? {
        let bytes = moeckpt_quantized_activation_bytes(format, inputs)
        return bytes > 0 ? bytes : nil
    }

    var format: moeckpt_weight_format {
        switch self {
        case .f32: MOECKPT_WEIGHTS_F32
        case .bf16: MOECKPT_WEIGHTS_BF16
        case .f16: MOECKPT_WEIGHTS_F16
        case .mxfp4: MOECKPT_WEIGHTS_MXFP4
        case .q8_0: MOECKPT_WEIGHTS_Q8_0
        case .q4_0: MOECKPT_WEIGHTS_Q4_0
        case .q4_K: MOECKPT_WEIGHTS_Q4_K
        case .q5_K: MOECKPT_WEIGHTS_Q5_K
        case .q6_K: MOECKPT_WEIGHTS_Q6_K
        case .f8e4m3: MOECKPT_WEIGHTS_F8_E4M3_BLOCK_SCALED
        case .mlx4: MOECKPT_WEIGHTS_MLX_AFFINE4
        case .mlx8: MOECKPT_WEIGHTS_MLX_AFFINE8
        case .mlx2: MOECKPT_WEIGHTS_MLX_AFFINE2
        case .mlxE2M1: MOECKPT_WEIGHTS_MLX_E2M1
        }
    }
}

/// The scales of a block-scaled matrix: element (r, c) is its stored value times
/// `values[(r / rows) * stride + c / columns]` (`moeckpt_block_scales`; `columns` a multiple of 16).
public struct BlockScales: @unchecked Sendable {
    public let values: UnsafePointer<Float>
    public let rows: Int
    public let columns: Int
    public let stride: Int
    /// The affine formats' offsets, laid out as `values`.
    public let biases: UnsafePointer<Float>?

    public init(values: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, biases: UnsafePointer<Float>? = nil) {
        precondition(rows > 0 && columns > 0 && columns % 16 == 0 && stride > 0, "block scales need whole 16-column chunks")
        (self.values, self.rows, self.columns, self.stride, self.biases) = (values, rows, columns, stride, biases)
    }

    /// The C view, for the duration of `body`; NULL for nil.
    static func withPointer<R>(_ scales: BlockScales?, _ body: (UnsafePointer<moeckpt_block_scales>?) -> R) -> R {
        guard let scales else { return body(nil) }
        var view = moeckpt_block_scales(
            values: scales.values, rows: scales.rows, columns: scales.columns, stride: scales.stride, biases: scales.biases)
        return withUnsafePointer(to: &view) { body($0) }
    }
}

/// The variants of the hot kernels, matrix products and vector exp (Sources/CKernels: one C source
/// compiled per instruction set with function-level target attributes), and which one this CPU
/// runs. Every variant computes every element with the same sequence of operations: results are
/// bit-identical.
public enum KernelVariant: String, Sendable, CaseIterable {
    /// Plain C vectors: what any host runs (NEON on arm64; on x86-64 older than AVX2, slow).
    case generic
    /// AVX2 + FMA (x86-64-v3), 6 x 16 register tiles.
    case avx2
    /// AVX-512, 8 x 32 register tiles.
    case avx512
    /// AVX-512 with VNNI: the same, with the integer products of `Arithmetic.ggml` in one
    /// instruction, and its prefill on weight rows repacked 16 to a vector.
    case avx512VNNI = "avx512-vnni"
    /// AVX-512 with VNNI and BF16: the same, with the BF16 products of `Arithmetic.ggml` as
    /// `vdpbf16ps` (which the other variants emulate, slower).
    case avx512BF16 = "avx512-bf16"
    /// The AVX-512 variant's tiles compiled for AVX2: for the tests, on machines without AVX-512.
    case avx512LogicOnAVX2 = "avx512-logic"

    var kernels: UnsafePointer<moeckpt_kernels>? {
        switch self {
        case .generic: moeckpt_kernels_generic()
        case .avx2: moeckpt_kernels_avx2()
        case .avx512: moeckpt_kernels_avx512()
        case .avx512VNNI: moeckpt_kernels_avx512_vnni()
        case .avx512BF16: moeckpt_kernels_avx512_bf16()
        case .avx512LogicOnAVX2: moeckpt_kernels_avx512_logic_on_avx2()
        }
    }

    /// Whether this build has the variant and this CPU (and OS) can run it.
    public var isSupported: Bool {
        guard kernels != nil else { return false }
        switch self {
        case .generic: return true
        case .avx2, .avx512LogicOnAVX2: return CPUFeatures.runsAVX2
        case .avx512: return CPUFeatures.runsAVX512
        case .avx512VNNI: return CPUFeatures.runsAVX512VNNI
        case .avx512BF16: return CPUFeatures.runsAVX512BF16
        }
    }

    /// The widest variant this CPU runs; `MOECKPT_KERNELS=<name>` selects another (for comparisons).
    public static let selected: KernelVariant = {
        if let name = getenv("MOECKPT_KERNELS").map({ String(cString: $0) }), let variant = KernelVariant(rawValue: name),
            variant.isSupported
        {
            return variant
        }
        return [.avx512BF16, .avx512VNNI, .avx512, .avx2].first(where: \.isSupported) ?? .generic
    }()

    /// The variant's table; only supported variants are ever asked.
    private var table: moeckpt_kernels { kernels!.pointee }

    /// Weight rows per register tile; threads split rows in multiples of it.
    public var rowTile: Int { table.row_tile }

    /// Tokens per panel of the activations (`TokenPanels`).
    public var tokenPanel: Int { table.token_panel }

    /// Token counts up to this run as dot products (`Linear.multiplyRows`).
    public var maxDotTokens: Int { table.max_dot_tokens }

    /// y[n, t] = Σ_k weight[n, k] x[k, t] for n in `rows` (`moeckpt_kernels.multiply`).
    func multiply(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, scales: BlockScales?, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, validTokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        BlockScales.withPointer(scales) {
            table.multiply(type.format, weight, $0, rows.lowerBound, rows.upperBound, inputs, x, tokens, validTokens, y, outputs)
        }
    }

    /// y[t, n] = Σ_k weight[n, k] x[t, k] for n in `rows`, row-major (`multiply_rows`).
    func multiplyRows(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, scales: BlockScales?, rows: Range<Int>, inputs: Int,
        x: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        BlockScales.withPointer(scales) {
            table.multiply_rows(type.format, weight, $0, rows.lowerBound, rows.upperBound, inputs, x, tokens, y, outputs)
        }
    }

    /// `tokens` rows of `inputs` activations quantized as ggml quantizes them for integer dot
    /// products on `type` (`quantize_activations`), into `out` (`type.quantizedActivationBytes(inputs)` per row).
    func quantizeActivations(
        for type: MatrixWeightType, x: UnsafePointer<Float>, tokens: Int, inputs: Int, into out: UnsafeMutableRawPointer
    ) {
        table.quantize_activations(type.format, x, tokens, inputs, out)
    }

    /// y[t, n] = weight row n times quantized activation row t, for n in `rows` (`multiply_rows_quantized`).
    func multiplyRowsQuantized(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, rows: Range<Int>, inputs: Int, x: UnsafeRawPointer,
        tokens: Int, y: UnsafeMutablePointer<Float>, outputs: Int
    ) {
        table.multiply_rows_quantized(type.format, weight, rows.lowerBound, rows.upperBound, inputs, x, tokens, y, outputs)
    }

    /// Rows `rows` of a [*, columns] matrix in `type`, widened to fp32 into `out` [rows.count, columns].
    public func widenRows(
        _ type: MatrixWeightType, weight: UnsafeRawPointer, scales: BlockScales? = nil, rows: Range<Int>, columns: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        BlockScales.withPointer(scales) {
            table.widen_rows(type.format, weight, $0, rows.lowerBound, rows.upperBound, columns, out)
        }
    }

    /// gate = silu(gate) * up, element by element (`Activation.siluMultiply`).
    func siluMultiply(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        table.silu_multiply(gate, up, count)
    }

    /// p = e^(p - shift) in place; their sum (`Softmax.row`).
    func expShiftedSum(_ p: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        table.exp_shifted_sum(p, count, shift)
    }

    /// y = e^x, the vector exp on whole 16-element chunks (`Activation.exp`).
    func exp(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        table.exp(x, y, count)
    }
}

/// What the CPU can run, asked once.
public enum CPUFeatures {
    /// AVX2, FMA and F16C, with the OS saving the registers.
    public static let runsAVX2 = moeckpt_cpu_runs_avx2_kernels() != 0
    /// AVX-512 F, BW, DQ and VL, with the OS saving the registers.
    public static let runsAVX512 = moeckpt_cpu_runs_avx512_kernels() != 0
    /// That and AVX-512 VNNI.
    public static let runsAVX512VNNI = moeckpt_cpu_runs_avx512_vnni_kernels() != 0
    /// That and AVX-512 BF16.
    public static let runsAVX512BF16 = moeckpt_cpu_runs_avx512_bf16_kernels() != 0
}
