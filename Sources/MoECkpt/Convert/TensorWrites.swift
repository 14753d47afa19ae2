/// The bytes of each tensor as a conversion writes them: copied or cast, piece by piece.
extension Converter {
    /// Writes the tensor's bytes straight from the input mapping (or chunk by chunk from a dataset
    /// read on demand), releasing pages once written so memory use stays flat however large the
    /// checkpoint.
    static func copying(
        _ tensor: NamedTensor, blocks: GGMLType? = nil, integrity: NativeIntegrity?, progress: ProgressReporter?
    ) -> TensorToWrite {
        TensorToWrite(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.rope.count, blocks: blocks) {
            (file: any ByteSink) throws(FileError) in
            for piece in tensor.rope.pieces {
                try integrity?.verify(piece)
                try piece.storage.stream(piece.offset..<(piece.offset + piece.count), chunk: copyChunkBytes, granule: 1) {
                    (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    try file.write(bytes)
                    progress?.advance(by: bytes.count)
                }
            }
        }
    }

    /// Casts piece by piece (pieces hold whole elements: layouts only split tensors at rows).
    static func casting(_ tensor: NamedTensor, to target: DType, integrity: NativeIntegrity?, progress: ProgressReporter?) -> TensorToWrite
    {
        let width = target.byteWidth!
        let sourceWidth = tensor.dtype.byteWidth!
        let count = tensor.rope.count / sourceWidth
        return TensorToWrite(name: tensor.name, dtype: target, shape: tensor.shape, byteCount: count * width) {
            (file: any ByteSink) throws(FileError) in
            let chunk = min(castChunkElements, max(count, 1))
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk * width, alignment: 64)
            defer { buffer.deallocate() }
            for piece in tensor.rope.pieces {
                try integrity?.verify(piece)
                try piece.storage.stream(
                    piece.offset..<(piece.offset + piece.count), chunk: chunk * sourceWidth,
                    granule: sourceWidth
                ) { (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    let elements = bytes.count / sourceWidth
                    var start = 0
                    while start < elements {
                        let n = min(chunk, elements - start)
                        // canCast was checked when the plan was made, so this cannot throw.
                        try? Cast.cast(
                            bytes.baseAddress! + start * sourceWidth, from: tensor.dtype,
                            into: buffer, as: target, count: n)
                        try file.write(UnsafeRawBufferPointer(start: buffer, count: n * width))
                        progress?.advance(by: n * width)
                        start += n
                    }
                }
            }
        }
    }

    /// Float tensors quantized into ggml blocks, a chunk of whole rows at a time (widened to F32
    /// first, as ggml quantizes F32).
    static func quantizing(
        _ tensor: NamedTensor, to type: GGMLType, integrity: NativeIntegrity?, progress: ProgressReporter?
    )
        -> TensorToWrite
    {
        let sourceWidth = tensor.dtype.byteWidth!
        let count = tensor.rope.count / sourceWidth
        let blockBytes = type.blockBytes
        let quantize = type.quantizer!  // the plan accepts quantizable types only
        return TensorToWrite(
            name: tensor.name, dtype: .u8, shape: tensor.shape, byteCount: count / 32 * blockBytes, blocks: type
        ) { (file: any ByteSink) throws(FileError) in
            let chunk = min(castChunkElements, max(count, 32)) / 32 * 32
            let floats = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
            let out = UnsafeMutableRawPointer.allocate(byteCount: chunk / 32 * blockBytes, alignment: 64)
            defer { floats.deallocate(); out.deallocate() }
            for piece in tensor.rope.pieces {
                try integrity?.verify(piece)
                try piece.storage.stream(
                    piece.offset..<(piece.offset + piece.count), chunk: chunk * sourceWidth, granule: 32 * sourceWidth
                ) { (bytes: UnsafeRawBufferPointer) throws(FileError) in
                    let elements = bytes.count / sourceWidth
                    try? Cast.cast(bytes.baseAddress!, from: tensor.dtype, into: UnsafeMutableRawPointer(floats), as: .f32, count: elements)
                    quantize(floats, elements, out)
                    try file.write(UnsafeRawBufferPointer(start: out, count: elements / 32 * blockBytes))
                    progress?.advance(by: elements / 32 * blockBytes)
                }
            }
        }
    }
}
