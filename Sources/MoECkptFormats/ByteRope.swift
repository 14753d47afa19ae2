/// Memory that tensor bytes live in: a file mapping, or a buffer that a format reads into on
/// demand (an HDF5 dataset).
public protocol ByteStorage: AnyObject, Sendable {
    /// Makes `bytes` available (reads them, for storages that are not mapped). Call before `bytes`.
    func load() throws(FileError)
    var bytes: UnsafeRawBufferPointer { get }
    /// Tells the storage a range will not be read again (a mapping drops its pages; a read buffer
    /// is freed once its end is released).
    func release(_ range: Range<Int>)
    /// Passes the bytes of `range` to `body` in order, in pieces of at most `chunk` bytes (whole
    /// multiples of `granule`, a dtype's width), holding no more than about a chunk in memory:
    /// for streaming a tensor of any size into a writer. Pieces are released once passed.
    func stream(
        _ range: Range<Int>, chunk: Int, granule: Int,
        _ body: (UnsafeRawBufferPointer) throws(FileError) -> Void) throws(FileError)
}

extension ByteStorage {
    public func stream(
        _ range: Range<Int>, chunk: Int, granule: Int,
        _ body: (UnsafeRawBufferPointer) throws(FileError) -> Void
    ) throws(FileError) {
        try streamViews(range, chunk: chunk, granule: granule, body)
    }

    /// Streams views of `bytes` (a mapping, or a buffer already read).
    func streamViews(
        _ range: Range<Int>, chunk: Int, granule: Int,
        _ body: (UnsafeRawBufferPointer) throws(FileError) -> Void
    ) throws(FileError) {
        try load()
        let step = max(granule, chunk / max(granule, 1) * max(granule, 1))
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + step, range.upperBound)
            try body(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            release(start..<end)
            start = end
        }
    }
}

extension FileMapping: ByteStorage {
    public func load() throws(FileError) {}
}

/// A contiguous run of bytes inside a storage.
public struct BytePiece: Sendable {
    public let storage: any ByteStorage
    public let offset: Int
    public let count: Int

    public init(storage: any ByteStorage, offset: Int, count: Int) {
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage.bytes[offset..<(offset + count)])
    }
}

/// A tensor's bytes as a sequence of pieces, concatenated. Stacking per-expert tensors, splitting
/// fused ones and permuting rows are all re-arrangements of pieces, so every layout conversion is
/// zero-copy until the bytes are written or used.
public struct ByteRope: Sendable {
    public private(set) var pieces: [BytePiece]
    public private(set) var count: Int

    public init(_ pieces: [BytePiece] = []) {
        self.pieces = []
        self.count = 0
        for piece in pieces { append(piece) }
    }

    /// Appends a piece, merging it with the last one when they are adjacent in the same storage.
    public mutating func append(_ piece: BytePiece) {
        guard piece.count > 0 else { return }
        count += piece.count
        if let last = pieces.last, last.storage === piece.storage, last.offset + last.count == piece.offset {
            pieces[pieces.count - 1] = BytePiece(storage: last.storage, offset: last.offset, count: last.count + piece.count)
        } else {
            pieces.append(piece)
        }
    }

    public mutating func append(_ rope: ByteRope) { for piece in rope.pieces { append(piece) } }

    /// The bytes `start..<start+length` of the rope, as a rope.
    public func slice(_ start: Int, _ length: Int) -> ByteRope {
        precondition(start >= 0 && length >= 0 && start + length <= count, "slice outside the rope")
        var result = ByteRope()
        var position = 0
        for piece in pieces {
            let pieceEnd = position + piece.count
            defer { position = pieceEnd }
            guard pieceEnd > start else { continue }
            guard position < start + length else { break }
            let lower = max(start, position) - position
            let upper = min(start + length, pieceEnd) - position
            result.append(BytePiece(storage: piece.storage, offset: piece.offset + lower, count: upper - lower))
        }
        return result
    }

    /// Loads every storage the rope reads from.
    public func load() throws(FileError) {
        for piece in pieces { try piece.storage.load() }
    }

    /// All bytes, copied into an array (for tests and small tensors); the rope must be loaded.
    public func copyBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for piece in pieces { out.append(contentsOf: piece.bytes) }
        return out
    }
}
