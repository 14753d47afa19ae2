/// The experts `torch.topk(x, k, largest=True, sorted=True)` picks on the CPU, ties included.
///
/// Routers see exact ties (a token whose embedding is zero gives all-equal logits), and which of
/// the tied experts a token goes to changes the auxiliary loss and, with unequal experts, the
/// output. PyTorch (aten/src/ATen/native/TopKImpl.h) copies the row into (value, index) pairs and
/// orders them with libstdc++'s algorithms and a comparator on values alone: `std::partial_sort`
/// when k * 64 <= n, else `std::nth_element` at k - 1 followed by `std::sort` of the first k - 1.
/// Which tied index comes first is whatever those algorithms leave, so they are reproduced here
/// step for step (GCC's bits/stl_algo.h and stl_heap.h), NaN ranking above every number.
package enum TorchTopK {
    typealias Element = (value: Float, index: Int)

    /// Indices of the k largest of `values`, in torch's order (`sorted: false` leaves the k in
    /// the order `nth_element` does, as `torch.topk(..., sorted=False)`).
    package static func indices(_ values: UnsafeBufferPointer<Float>, k: Int, sorted: Bool = true) -> [Int] {
        let n = values.count
        guard k > 0, n > 0 else { return [] }
        var queue = (0..<n).map { (value: values[$0], index: $0) }
        if k * 64 <= n {
            partialSort(&queue, middle: k, 0, n)
        } else {
            nthElement(&queue, nth: k - 1, 0, n)
            if sorted { sort(&queue, 0, k - 1) }
        }
        return queue.prefix(k).map(\.index)
    }

    package static func indices(_ values: [Float], k: Int, sorted: Bool = true) -> [Int] {
        values.withUnsafeBufferPointer { indices($0, k: min(k, values.count), sorted: sorted) }
    }

    /// torch's "largest" comparator: x before y.
    @inline(__always)
    static func before(_ x: Element, _ y: Element) -> Bool {
        (x.value.isNaN && !y.value.isNaN) || x.value > y.value
    }

    /// floor(log2(n)), std::__lg.
    static func lg(_ n: Int) -> Int { Int.bitWidth - 1 - n.leadingZeroBitCount }

    // MARK: std::nth_element and std::sort (introselect, introsort, insertion sorts)

    static func nthElement(_ a: inout [Element], nth: Int, _ first: Int, _ last: Int) {
        guard first != last, nth != last else { return }
        var (first, last, depth) = (first, last, lg(last - first) * 2)
        while last - first > 3 {
            if depth == 0 {
                heapSelect(&a, first, nth + 1, last)
                a.swapAt(first, nth)
                return
            }
            depth -= 1
            let cut = unguardedPartitionPivot(&a, first, last)
            if cut <= nth { first = cut } else { last = cut }
        }
        insertionSort(&a, first, last)
    }

    static func sort(_ a: inout [Element], _ first: Int, _ last: Int) {
        guard first < last else { return }
        introsortLoop(&a, first, last, depth: lg(last - first) * 2)
        if last - first > threshold {
            insertionSort(&a, first, first + threshold)
            for i in (first + threshold)..<last { unguardedLinearInsert(&a, i) }
        } else {
            insertionSort(&a, first, last)
        }
    }

    /// `_S_threshold`: ranges this short are left to the final insertion sort.
    static let threshold = 16

    static func introsortLoop(_ a: inout [Element], _ first: Int, _ last: Int, depth: Int) {
        var (last, depth) = (last, depth)
        while last - first > threshold {
            if depth == 0 {
                partialSort(&a, middle: last, first, last)
                return
            }
            depth -= 1
            let cut = unguardedPartitionPivot(&a, first, last)
            introsortLoop(&a, cut, last, depth: depth)
            last = cut
        }
    }

    static func unguardedPartitionPivot(_ a: inout [Element], _ first: Int, _ last: Int) -> Int {
        moveMedianToFirst(&a, first, first + 1, first + (last - first) / 2, last - 1)
        var (low, high) = (first + 1, last)
        let pivot = first
        while true {
            while before(a[low], a[pivot]) { low += 1 }
            high -= 1
            while before(a[pivot], a[high]) { high -= 1 }
            if !(low < high) { return low }
            a.swapAt(low, high)
            low += 1
        }
    }

    static func moveMedianToFirst(_ a: inout [Element], _ result: Int, _ x: Int, _ y: Int, _ z: Int) {
        if before(a[x], a[y]) {
            if before(a[y], a[z]) {
                a.swapAt(result, y)
            } else if before(a[x], a[z]) {
                a.swapAt(result, z)
            } else {
                a.swapAt(result, x)
            }
        } else if before(a[x], a[z]) {
            a.swapAt(result, x)
        } else if before(a[y], a[z]) {
            a.swapAt(result, z)
        } else {
            a.swapAt(result, y)
        }
    }

    static func insertionSort(_ a: inout [Element], _ first: Int, _ last: Int) {
        guard first != last else { return }
        for i in (first + 1)..<max(first + 1, last) {
            if before(a[i], a[first]) {
                let value = a[i]
                var j = i
                while j > first {
                    a[j] = a[j - 1]
                    j -= 1
                }
                a[first] = value
            } else {
                unguardedLinearInsert(&a, i)
            }
        }
    }

    static func unguardedLinearInsert(_ a: inout [Element], _ position: Int) {
        let value = a[position]
        var last = position
        var next = position - 1
        while before(value, a[next]) {
            a[last] = a[next]
            last = next
            next -= 1
        }
        a[last] = value
    }

    // MARK: std::partial_sort (heap select, heap sort)

    static func partialSort(_ a: inout [Element], middle: Int, _ first: Int, _ last: Int) {
        heapSelect(&a, first, middle, last)
        var end = middle
        while end - first > 1 {
            end -= 1
            popHeap(&a, first, end, result: end)
        }
    }

    static func heapSelect(_ a: inout [Element], _ first: Int, _ middle: Int, _ last: Int) {
        makeHeap(&a, first, middle)
        for i in middle..<max(middle, last) where before(a[i], a[first]) {
            popHeap(&a, first, middle, result: i)
        }
    }

    static func makeHeap(_ a: inout [Element], _ first: Int, _ last: Int) {
        let length = last - first
        guard length >= 2 else { return }
        var parent = (length - 2) / 2
        while true {
            adjustHeap(&a, first, hole: parent, length: length, value: a[first + parent])
            if parent == 0 { return }
            parent -= 1
        }
    }

    static func popHeap(_ a: inout [Element], _ first: Int, _ last: Int, result: Int) {
        let value = a[result]
        a[result] = a[first]
        adjustHeap(&a, first, hole: 0, length: last - first, value: value)
    }

    static func adjustHeap(_ a: inout [Element], _ first: Int, hole: Int, length: Int, value: Element) {
        let top = hole
        var hole = hole
        var child = hole
        while child < (length - 1) / 2 {
            child = 2 * (child + 1)
            if before(a[first + child], a[first + child - 1]) { child -= 1 }
            a[first + hole] = a[first + child]
            hole = child
        }
        if length & 1 == 0 && child == (length - 2) / 2 {
            child = 2 * (child + 1)
            a[first + hole] = a[first + child - 1]
            hole = child - 1
        }
        // std::__push_heap
        var parent = (hole - 1) / 2
        while hole > top && before(a[first + parent], value) {
            a[first + hole] = a[first + parent]
            hole = parent
            parent = (hole - 1) / 2
        }
        a[first + hole] = value
    }
}
