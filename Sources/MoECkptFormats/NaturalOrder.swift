/// Name order in which digit runs compare as numbers: `layers.2` before `layers.10`.
public func naturalOrder(_ a: String, _ b: String) -> Bool {
    var i = a.utf8.makeIterator(), j = b.utf8.makeIterator()
    var x = i.next(), y = j.next()
    func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= 48 && $0 <= 57 } ?? false }
    while let cx = x, let cy = y {
        if isDigit(cx) && isDigit(cy) {
            var nx = 0, ny = 0, lx = 0, ly = 0
            while isDigit(x) { nx = nx &* 10 &+ Int(x! - 48); lx += 1; x = i.next() }
            while isDigit(y) { ny = ny &* 10 &+ Int(y! - 48); ly += 1; y = j.next() }
            if nx != ny { return nx < ny }
            if lx != ly { return lx < ly }
            continue
        }
        if cx != cy { return cx < cy }
        x = i.next(); y = j.next()
    }
    return x == nil && y != nil
}
