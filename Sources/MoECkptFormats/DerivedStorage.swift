import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// Bytes computed from other tensors' bytes on first use: a layout's re-arrangement that does not
/// move whole byte ranges (a transpose, columns dealt out). Like a dataset read, the buffer comes
/// with the first `load()` and goes when its end is released, so a conversion holds one such
/// tensor at a time and a forward pass keeps only those it reads.
public final class DerivedStorage: ByteStorage, @unchecked Sendable {
    /// Writes the derived bytes (`byteCount` of them) from the sources' bytes, in their order.
    public typealias Derive = @Sendable ([UnsafeRawBufferPointer], UnsafeMutableRawBufferPointer) -> Void

    let name: String
    public let byteCount: Int
    let sources: [ByteRope]
    let derive: Derive
    /// What the bytes are computed from, for a reader that can use that instead (the kernels read
    /// FP8 block-scaled weights as they are stored); nil when nothing says.
    public let origin: (any Sendable)?
    private var buffer: UnsafeMutableRawBufferPointer?
    private let lock = PthreadLock()

    /// `name` is the tensor's, for errors.
    public init(name: String, byteCount: Int, sources: [ByteRope], origin: (any Sendable)? = nil, derive: @escaping Derive) {
        self.name = name
        self.byteCount = byteCount
        self.sources = sources
        self.origin = origin
        self.derive = derive
    }

    deinit { buffer.map { free($0.baseAddress) } }

    /// A rope over the whole derived tensor.
    public var rope: ByteRope { ByteRope([BytePiece(storage: self, offset: 0, count: byteCount)]) }

    public func load() throws(FileError) {
        let result = lock.locked { () -> Result<Void, FileError> in
            guard buffer == nil else { return .success(()) }
            do throws(FileError) {
                for source in sources { try source.load() }
                let destination: UnsafeMutableRawBufferPointer
                do throws(MemoryError) { destination = try MemoryBudget.allocate(max(byteCount, 1)) } catch {
                    throw FileError(path: name, problem: error)
                }
                // A source in one piece is read where it lies; one of several pieces is gathered first.
                var gathered: [UnsafeMutableRawBufferPointer] = []
                defer { for copy in gathered { free(copy.baseAddress) } }
                var inputs: [UnsafeRawBufferPointer] = []
                for source in sources {
                    if source.pieces.count == 1 {
                        inputs.append(source.pieces[0].bytes)
                        continue
                    }
                    let copy: UnsafeMutableRawBufferPointer
                    do throws(MemoryError) { copy = try MemoryBudget.allocate(max(source.count, 1)) } catch {
                        free(destination.baseAddress)
                        throw FileError(path: name, problem: error)
                    }
                    gathered.append(copy)
                    var offset = 0
                    for piece in source.pieces {
                        UnsafeMutableRawBufferPointer(rebasing: copy[offset..<(offset + piece.count)]).copyMemory(from: piece.bytes)
                        offset += piece.count
                    }
                    inputs.append(UnsafeRawBufferPointer(rebasing: copy[0..<source.count]))
                }
                derive(inputs, UnsafeMutableRawBufferPointer(rebasing: destination[0..<byteCount]))
                buffer = destination
            } catch {
                return .failure(error)
            }
            return .success(())
        }
        try result.get()
    }

    public var bytes: UnsafeRawBufferPointer {
        lock.locked { buffer.map { UnsafeRawBufferPointer(rebasing: $0[0..<byteCount]) } ?? UnsafeRawBufferPointer(start: nil, count: 0) }
    }

    public func release(_ range: Range<Int>) {
        guard range.upperBound >= byteCount else { return }
        lock.locked {
            buffer.map { free($0.baseAddress) }
            buffer = nil
        }
    }
}
