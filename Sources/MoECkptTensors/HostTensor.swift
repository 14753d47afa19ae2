/// An fp32 tensor in memory: the activations of a forward pass, and its inputs and outputs.
public struct HostTensor: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }

    public static func scalar(_ value: Float) -> HostTensor { HostTensor(shape: [], values: [value]) }

    /// Rows of the matrix the tensor is viewed as: every dimension but the last.
    public var rows: Int { shape.count >= 2 ? shape.dropLast().reduce(1, *) : 1 }
    public var columns: Int { shape.last ?? 1 }
}
