import MoECkptFormats
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// Canonical tensors turned into fp32 arrays (F16, BF16 and F8 widen exactly).
package struct WeightReader {
    package let model: LoadedModel

    package init(model: LoadedModel) { self.model = model }

    package func tensor(_ name: String) throws(ForwardError) -> CanonicalTensor {
        guard let tensor = model.tensor(name) else { throw .badInput("missing weight \(name)") }
        guard tensor.dtype.byteWidth != nil, Cast.canCast(from: tensor.dtype, to: .f32) else {
            throw .unsupportedWeightDtype(tensor.name, tensor.dtype)
        }
        return tensor
    }

    package func f32(_ name: String) throws(ForwardError) -> [Float] { try Self.f32(tensor(name)) }

    /// Stacked experts [experts, outputs, inputs], each in place where it can be (as blocks when the
    /// model holds them so).
    package func experts(_ name: String, experts: Int, inputs: Int, outputs: Int) throws(ForwardError) -> ExpertLinears {
        guard let quantized = model.quantized[name] else {
            return try ExpertLinears(tensor(name), experts: experts, inputs: inputs, outputs: outputs)
        }
        let stack = try WeightMatrix(quantized, name: name)
        return ExpertLinears(
            layers: (0..<experts).map { LinearLayer(weight: stack.advanced(by: $0 * outputs * inputs), inputs: inputs, outputs: outputs) })
    }

    /// A weight matrix, in place where its dtype and bytes allow; block-quantized when the model
    /// also holds it so.
    package func matrix(_ name: String) throws(ForwardError) -> WeightMatrix {
        if let quantized = model.quantized[name] { return try WeightMatrix(quantized, name: name) }
        return try WeightMatrix(tensor(name))
    }

    package static func f32(_ tensor: CanonicalTensor) throws(ForwardError) -> [Float] {
        do { try tensor.rope.load() } catch { throw .unreadable(error.description) }
        return try f32(tensor.name, dtype: tensor.dtype, tensor.rope)
    }

    /// The bytes of a loaded rope, widened to fp32.
    package static func f32(_ name: String, dtype: DType, _ rope: ByteRope) throws(ForwardError) -> [Float] {
        guard let width = dtype.byteWidth, Cast.canCast(from: dtype, to: .f32) else {
            throw .unsupportedWeightDtype(name, dtype)
        }
        var out = [Float](repeating: 0, count: rope.count / width)
        out.withUnsafeMutableBytes { destination in
            var offset = 0
            for piece in rope.pieces {
                let count = piece.count / width
                try? Cast.cast(
                    piece.bytes.baseAddress!, from: dtype, into: destination.baseAddress! + offset * 4,
                    as: .f32, count: count)
                offset += count
            }
        }
        return out
    }
}

/// A weight matrix as the kernels read it: F32, BF16 or F16 in place in the checkpoint's file
/// mapping when its bytes are one contiguous run there, otherwise gathered into memory of its own
/// (other dtypes widened to fp32).
package struct WeightMatrix: @unchecked Sendable {
    package let type: MatrixWeightType
    package let base: UnsafeRawPointer
    /// The block scales of a block-scaled type (FP8), nil otherwise.
    package let scales: BlockScales?
    /// Keeps `base` and `scales` alive: the file mapping, or the array.
    package let owner: AnyObject

    /// fp32 values of its own.
    package init(_ values: [Float]) {
        let box = ArrayBox(values)
        self.init(type: .f32, base: box.base, owner: box)
    }

    /// bfloat16 bit patterns of its own.
    package init(bf16 values: [UInt16]) {
        let box = ArrayBox(values)
        self.init(type: .bf16, base: box.base, owner: box)
    }

    /// IEEE half bit patterns of its own.
    package init(f16 values: [UInt16]) {
        let box = ArrayBox(values)
        self.init(type: .f16, base: box.base, owner: box)
    }

    /// Blocks of its own: MXFP4 (`MXFP4Blocks`) or Q8_0 (`GGMLBlocks`).
    package init(blocks: [UInt8], type: MatrixWeightType) {
        let box = ArrayBox(blocks)
        self.init(type: type, base: box.base, owner: box)
    }

    /// FP8 E4M3 codes [rows, columns] of its own, with a scale per 128 x 128 block (row-major).
    package init(fp8 codes: [UInt8], columns: Int, blockScales: [Float]) {
        let (box, scaleBox) = (ArrayBox(codes), ArrayBox(blockScales))
        let scales = BlockScales(
            values: scaleBox.base.assumingMemoryBound(to: Float.self), rows: 128, columns: 128, stride: (columns + 127) / 128)
        self.init(type: .f8e4m3, base: box.base, scales: scales, owner: [box, scaleBox] as AnyObject)
    }

    private init(type: MatrixWeightType, base: UnsafeRawPointer, scales: BlockScales? = nil, owner: AnyObject) {
        (self.type, self.base, self.scales, self.owner) = (type, base, scales, owner)
    }

    /// FP8 codes and their block scales (copied: 4 bytes per block of weights, aligned for the
    /// kernels), read in place; nil when the bytes are not one run in memory.
    init?(_ matrix: BlockScaledMatrix, derivedBy storage: DerivedStorage) throws(ForwardError) {
        guard matrix.dtype == .f8E4M3, matrix.blockColumns % 16 == 0, matrix.rows > 0, matrix.columns > 0 else { return nil }
        do {
            try matrix.values.load()
            try matrix.scales.load()
        } catch { throw .unreadable(error.description) }
        guard matrix.values.pieces.count == 1, let start = matrix.values.pieces[0].bytes.baseAddress else { return nil }
        let stride = (matrix.columns + matrix.blockColumns - 1) / matrix.blockColumns
        let box = ArrayBox(
            matrix.scales.copyBytes().withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            })
        let scales = BlockScales(
            values: box.base.assumingMemoryBound(to: Float.self), rows: matrix.blockRows, columns: matrix.blockColumns,
            stride: stride)
        self.init(type: .f8e4m3, base: start, scales: scales, owner: ScaledOwner(storage: storage, scales: box))
    }

    /// MLX codes of its own (rows of `columns`) with F32 scales per group: affine codes (2, 4 or 8
    /// bits) with their biases, or E2M1 codes (mxfp4, nvfp4: `type` `.mlxE2M1`, no biases).
    package init(mlx codes: [UInt8], type: MatrixWeightType, columns: Int, groupSize: Int, scales: [Float], biases: [Float]?) {
        let (box, scaleBox, biasBox) = (ArrayBox(codes), ArrayBox(scales), biases.map(ArrayBox.init))
        let blockScales = BlockScales(
            values: scaleBox.base.assumingMemoryBound(to: Float.self), rows: 1, columns: groupSize, stride: columns / groupSize,
            biases: biasBox?.base.assumingMemoryBound(to: Float.self))
        self.init(type: type, base: box.base, scales: blockScales, owner: [box, scaleBox, biasBox as Any] as AnyObject)
    }

    /// The kernels' format for an MLX quantization: affine codes of 2, 4 and 8 bits, E2M1 codes
    /// (mxfp4, nvfp4) and E4M3 codes (mxfp8, as FP8 with a scale per one-row block); nil for the
    /// affine widths whose codes straddle bytes (3, 5, 6), which are dequantized.
    static func kernelType(_ parameters: MLXQuantization.Parameters) -> MatrixWeightType? {
        switch (parameters.mode, parameters.bits) {
        case (.affine, 2): .mlx2
        case (.affine, 4): .mlx4
        case (.affine, 8): .mlx8
        case (.mxfp4, _), (.nvfp4, _): .mlxE2M1
        case (.mxfp8, _): .f8e4m3
        default: nil
        }
    }

    /// Rows [first, first + count) of MLX codes read in place, their groups' scales (and biases)
    /// widened to F32; nil for the codes the kernels do not read (`kernelType`) or bytes not in
    /// one run.
    init?(_ matrix: MLXQuantizedMatrix, rows range: Range<Int>, derivedBy storage: DerivedStorage) throws(ForwardError) {
        let (mode, group) = (matrix.parameters.mode, matrix.parameters.groupSize)
        guard let type = Self.kernelType(matrix.parameters), group % 16 == 0, (mode == .affine) == (matrix.biases != nil) else {
            return nil
        }
        do {
            try matrix.codes.load()
            try matrix.scales.load()
            try matrix.biases?.load()
        } catch { throw .unreadable(error.description) }
        guard matrix.codes.pieces.count == 1, let start = matrix.codes.pieces[0].bytes.baseAddress else { return nil }
        let groups = matrix.groupsPerRow
        func widened(_ rope: ByteRope) throws(ForwardError) -> ArrayBox {
            let width = matrix.scaleType.byteWidth ?? 4
            let rows = rope.slice(range.lowerBound * groups * width, range.count * groups * width)
            // The microscaling modes' U8 scales are E8M0 or E4M3 codes, widened as MLX does.
            guard mode == .affine else { return ArrayBox(rows.copyBytes().map { mode.scale(ofCode: $0) }) }
            return ArrayBox(try WeightReader.f32("scales", dtype: matrix.scaleType, rows))
        }
        let scaleBox = try widened(matrix.scales)
        let biasBox = try matrix.biases.map { (rope) throws(ForwardError) in try widened(rope) }
        let scales = BlockScales(
            values: scaleBox.base.assumingMemoryBound(to: Float.self), rows: 1, columns: group, stride: groups,
            biases: biasBox?.base.assumingMemoryBound(to: Float.self))
        self.init(
            type: type, base: start + type.bytes(range.lowerBound * matrix.columns), scales: scales,
            owner: [ScaledOwner(storage: storage, scales: scaleBox), biasBox as Any] as AnyObject)
    }

    /// Row `row` of this [*, columns] matrix, widened to fp32 where it is (an embedding lookup
    /// reads one row, not the table).
    package func widenRow(_ row: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        KernelVariant.selected.widenRows(type, weight: base, scales: scales, rows: row..<(row + 1), columns: columns, into: out)
    }

    /// The matrix starting `elements` further on (one expert of a stack), kept alive by the same owner.
    package func advanced(by elements: Int) -> WeightMatrix {
        precondition(scales == nil, "a block-scaled matrix is one expert's")
        return WeightMatrix(type: type, base: base + type.bytes(elements), owner: owner)
    }

    /// Block-quantized weights, read in place once their blocks are in memory.
    package init(_ quantized: QuantizedWeight, name: String) throws(ForwardError) {
        do { try quantized.rope.load() } catch { throw .unreadable(error.description) }
        let type: MatrixWeightType =
            switch quantized.format {
            case .mxfp4: .mxfp4
            case .q8_0: .q8_0
            case .q4_0: .q4_0
            case .q4_K: .q4_K
            case .q5_K: .q5_K
            case .q6_K: .q6_K
            }
        guard quantized.rope.pieces.count == 1, let piece = quantized.rope.pieces.first, let start = piece.bytes.baseAddress else {
            // Rows moved into another order (query/key rows): gathered into memory of its own.
            let box = ArrayBox(quantized.rope.copyBytes())
            self.init(type: type, base: box.base, owner: box)
            return
        }
        self.init(type: type, base: start, owner: piece.storage)
    }

    /// Bytes `range` of a tensor (one expert of a stack, or all of it).
    package init(_ tensor: CanonicalTensor, bytes range: Range<Int>? = nil) throws(ForwardError) {
        let rope = range.map { tensor.rope.slice($0.lowerBound, $0.count) } ?? tensor.rope
        // Weights dequantized from FP8 blocks: the stored codes and scales, not the fp32 copy.
        if rope.pieces.count == 1, let piece = rope.pieces.first, let derived = piece.storage as? DerivedStorage,
            let origin = derived.origin as? BlockScaledMatrix, piece.offset == 0, piece.count == derived.byteCount,
            let matrix = try WeightMatrix(origin, derivedBy: derived)
        {
            self = matrix
            return
        }
        // Weights dequantized from MLX codes: the codes, scales and biases, rows of the range.
        if rope.pieces.count == 1, let piece = rope.pieces.first, let derived = piece.storage as? DerivedStorage,
            let origin = derived.origin as? MLXQuantizedMatrix, piece.offset % (origin.columns * 4) == 0,
            piece.count % (origin.columns * 4) == 0,
            let matrix = try WeightMatrix(
                origin, rows: (piece.offset / (origin.columns * 4))..<((piece.offset + piece.count) / (origin.columns * 4)),
                derivedBy: derived)
        {
            self = matrix
            return
        }
        do { try rope.load() } catch { throw .unreadable(error.description) }
        let inPlace: MatrixWeightType? =
            switch tensor.dtype {
            case .f32: .f32
            case .bf16: .bf16
            case .f16: .f16
            default: nil
            }
        if let inPlace, rope.pieces.count == 1, let piece = rope.pieces.first, let start = piece.bytes.baseAddress {
            self.init(type: inPlace, base: start, owner: piece.storage)
        } else if let inPlace {
            // Rows moved into another order (GGUF's query/key rows): gathered in their dtype, so
            // they are read as the other weights are (half the bytes of fp32 for BF16 and F16).
            let box = ArrayBox(rope.copyBytes())
            self.init(type: inPlace, base: box.base, owner: box)
        } else {
            self.init(try WeightReader.f32(tensor.name, dtype: tensor.dtype, rope))
        }
    }
}

/// What keeps an FP8 matrix alive: the storage that holds its codes' mapping, and its scales.
final class ScaledOwner {
    let storage: DerivedStorage
    let scales: ArrayBox

    init(storage: DerivedStorage, scales: ArrayBox) {
        (self.storage, self.scales) = (storage, scales)
    }
}

/// A copy of an array's elements in memory that stays put for as long as a weight matrix refers
/// to it (cache-line aligned).
final class ArrayBox: @unchecked Sendable {
    let base: UnsafeRawPointer

    init<Element: BitwiseCopyable>(_ values: [Element]) {
        let bytes = max(1, values.count * MemoryLayout<Element>.stride)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        values.withUnsafeBytes { if let source = $0.baseAddress { memory.copyMemory(from: source, byteCount: $0.count) } }
        base = UnsafeRawPointer(memory)
    }

    deinit { UnsafeMutableRawPointer(mutating: base).deallocate() }
}
