import CHDF5

/// A dataset seen as a row-major sequence of equal *units*, so that it can be read and written a
/// bounded piece at a time: a unit is one index along `axis` with every later axis whole, and
/// `axis` is the outermost one whose units fit in `maxBytes`. A run of consecutive units that stays
/// inside one row (the same indices on the axes before `axis`) is one hyperslab.
struct HDF5Slabs {
    let shape: [Int]
    let axis: Int
    let unitBytes: Int
    /// Units along `axis` (1 for a scalar).
    let unitsPerRow: Int
    let totalUnits: Int

    init(shape: [Int], elementBytes: Int, maxBytes: Int) {
        self.shape = shape
        var inner = elementBytes
        var axis = shape.count - 1
        // Grow the unit outwards while it still fits.
        while axis > 0 {
            let (grown, overflow) = inner.multipliedReportingOverflow(by: shape[axis])
            guard !overflow, grown <= maxBytes, shape[axis] > 0 else { break }
            inner = grown
            axis -= 1
        }
        self.axis = max(axis, 0)
        unitBytes = shape.isEmpty ? elementBytes : inner
        unitsPerRow = shape.isEmpty ? 1 : shape[self.axis]
        totalUnits = shape.isEmpty ? 1 : shape[0...self.axis].reduce(1, *)
    }

    /// The hyperslab of units `first..<first+count`, which lie inside one row.
    func hyperslab(first: Int, count: Int) -> (start: [hsize_t], count: [hsize_t]) {
        var start = [hsize_t](repeating: 0, count: shape.count)
        var extent = shape.map { hsize_t($0) }
        var index = first
        for dim in stride(from: axis, through: 0, by: -1) {
            start[dim] = hsize_t(index % shape[dim])
            extent[dim] = 1
            index /= shape[dim]
        }
        extent[axis] = hsize_t(count)
        return (start, extent)
    }

    /// The run of at most `maxUnits` units from `first`, up to the end of its row or of `limit`.
    func run(from first: Int, maxUnits: Int, limit: Int) -> Range<Int> {
        let rowEnd = (first / unitsPerRow + 1) * unitsPerRow
        return first..<min(limit, rowEnd, first + max(1, maxUnits))
    }

    /// The dataspaces that move a run of units between a dataset and a flat buffer: the dataset's
    /// space with the run's hyperslab selected, and a one-dimensional memory space of its elements.
    func spaces(of run: Range<Int>, in dataset: hid_t, _ path: String) throws(HDF5Error) -> (file: HDF5Handle, memory: HDF5Handle) {
        let slab = hyperslab(first: run.lowerBound, count: run.count)
        let file = try HDF5Handle(H5Dget_space(dataset), "read the shape of \(path)", close: H5Sclose)
        try HDF5.check(H5Sselect_hyperslab(file.id, H5S_SELECT_SET, slab.start, nil, slab.count, nil), "select part of \(path)")
        let memory = try HDF5Handle(H5Screate_simple(1, [hsize_t(slab.count.reduce(1, *))], nil), "dataspace for \(path)", close: H5Sclose)
        return (file, memory)
    }
}
