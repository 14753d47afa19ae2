import CHDF5
import MoECkptTensors

/// A libhdf5 failure: the operation moeckpt attempted and what the library's error stack says.
public struct HDF5Error: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let reason: String
    public var description: String { reason.isEmpty ? operation : "\(operation): \(reason)" }
}

/// Dataset types moeckpt cannot hold, and names it cannot write.
public enum HDF5FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedType(dataset: String, type: String)
    case unsupportedDataspace(dataset: String)
    case externalLink(String)
    case externalData(String)
    case virtualSource(dataset: String, file: String)
    case nameCollision(tensor: String, first: String, second: String)
    case cannotStore(tensor: String, dtype: DType)
    case nameClash(tensor: String, group: String)
    case notHDF5
    case libraryCrashed(signal: Int32)
    case libraryTimedOut

    public var description: String {
        switch self {
        case .unsupportedType(let dataset, let type): "dataset \(dataset) has type \(type), which moeckpt cannot represent"
        case .unsupportedDataspace(let dataset): "dataset \(dataset) has no simple dataspace"
        case .externalLink(let name): "\(name) is an external link; moeckpt reads only datasets inside the file"
        case .externalData(let name): "dataset \(name) keeps its data in external files; moeckpt reads only data inside the file"
        case .virtualSource(let dataset, let file):
            "dataset \(dataset) is virtual, drawing on the file \"\(file)\"; moeckpt reads only data inside the file"
        case .nameCollision(let tensor, let first, let second):
            "datasets \(first) and \(second) both map to the tensor name \(tensor); rename one of them"
        case .cannotStore(let tensor, let dtype): "tensor \(tensor) is \(dtype.name), which moeckpt does not write to HDF5"
        case .nameClash(let tensor, let group):
            "tensor \(tensor) would be a dataset where another tensor needs the group /\(group); HDF5 cannot hold both"
        case .notHDF5: "not an HDF5 file (no HDF5 signature)"
        case .libraryCrashed(let signal):
            "corrupt HDF5 file: libhdf5 crashed reading its structure (signal \(signal), caught in a separate process)"
        case .libraryTimedOut: "corrupt HDF5 file: libhdf5 did not finish reading its structure within 10 s"
        }
    }
}

/// The few libhdf5 calls moeckpt makes, behind typed wrappers. libhdf5's own error printing is
/// silenced; a failing call's error stack becomes one `HDF5Error`. Debian's serial libhdf5 is not
/// thread-safe, so every call goes through one lock.
enum HDF5 {
    static let defaultProperties = hid_t(H5P_DEFAULT)
    /// The whole dataspace (H5S_ALL).
    static let all = hid_t(H5S_ALL)
    /// Recursive: handles close themselves (and take the lock) while other calls hold it.
    private static let lock = PthreadLock(recursive: true)
    nonisolated(unsafe) private static var initialized = false

    /// Set in a sandbox child: it has one thread, and the lock it inherited belongs to the parent's
    /// thread (a recursive mutex records the owner's thread id, which the child's thread does not have).
    nonisolated(unsafe) static var inSandboxChild = false

    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        if inSandboxChild { return try body() }
        return try lock.locked {
            if !initialized {
                initialized = true
                H5open()
                H5Eset_auto2(moeckpt_h5e_default(), nil, nil)
            }
            return try body()
        }
    }

    /// Innermost first: what failed, then why, from libhdf5's error stack.
    static func errorStack() -> String {
        final class Box { var messages: [String] = [] }
        let box = Box()
        let walker: H5E_walk2_t = { _, error, data in
            guard let error, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            if let desc = error.pointee.desc { box.messages.append(String(cString: desc)) }
            return 0
        }
        H5Ewalk2(moeckpt_h5e_default(), H5E_WALK_DOWNWARD, walker, Unmanaged.passUnretained(box).toOpaque())
        H5Eclear2(moeckpt_h5e_default())
        // The outermost message says what failed, the innermost why; the ones between name
        // libhdf5's internals.
        guard let first = box.messages.first, let last = box.messages.last else { return "" }
        let message = first == last ? first : "\(first): \(last)"
        return message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// Checks a call's result: negative is failure.
    @discardableResult
    static func check<T: BinaryInteger>(_ result: T, _ operation: @autoclosure () -> String) throws(HDF5Error) -> T {
        guard result >= 0 else { throw HDF5Error(operation: operation(), reason: errorStack()) }
        return result
    }
}

/// An HDF5 identifier closed with its matching close call when released.
final class HDF5Handle: @unchecked Sendable {
    let id: hid_t
    private let close: (hid_t) -> herr_t

    init(_ id: hid_t, _ operation: @autoclosure () -> String, close: @escaping (hid_t) -> herr_t) throws(HDF5Error) {
        guard id >= 0 else { throw HDF5Error(operation: operation(), reason: HDF5.errorStack()) }
        self.id = id
        self.close = close
    }

    deinit { HDF5.locked { _ = close(id) } }
}
