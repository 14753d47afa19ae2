import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// A linear layer, [outputs, inputs], and optional fp32 bias.
package struct LinearLayer: Sendable {
    package let weight: WeightMatrix
    package let bias: [Float]?
    package let inputs: Int
    package let outputs: Int

    package init(weight: WeightMatrix, bias: [Float]? = nil, inputs: Int, outputs: Int) {
        self.weight = weight
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
    }

    package init(weight: [Float], bias: [Float]? = nil, inputs: Int, outputs: Int) {
        self.init(weight: WeightMatrix(weight), bias: bias, inputs: inputs, outputs: outputs)
    }

    /// y = x wᵀ + b for `rows` rows of x.
    package func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, threads: Int) {
        withExtendedLifetime(weight.owner) {
            func run(_ b: UnsafePointer<Float>?) {
                Linear.forward(
                    weight.type, x: x, rows: rows, inputs: inputs, weight: weight.base, scales: weight.scales, outputs: outputs,
                    bias: b, into: y, threads: threads)
            }
            if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }
    }

    package func apply(_ x: [Float], rows: Int, threads: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in apply(xp.baseAddress!, rows: rows, into: yp.baseAddress!, threads: threads) }
        }
        return y
    }
}

/// One linear layer per expert: weights [experts][outputs, inputs], bias [experts, outputs].
package struct ExpertLinears: Sendable {
    package let layers: [LinearLayer]

    /// A stacked tensor [experts, outputs, inputs], each expert in place where it can be.
    package init(_ tensor: CanonicalTensor, experts: Int, inputs: Int, outputs: Int) throws(ForwardError) {
        let bytes = tensor.rope.count / max(experts, 1)
        var layers: [LinearLayer] = []
        for e in 0..<experts {
            layers.append(
                LinearLayer(
                    weight: try WeightMatrix(tensor, bytes: (e * bytes)..<((e + 1) * bytes)),
                    inputs: inputs, outputs: outputs))
        }
        self.layers = layers
    }

    package init(layers: [LinearLayer]) { self.layers = layers }

    package func apply(expert e: Int, _ x: [Float], rows: Int, threads: Int) -> [Float] {
        layers[e].apply(x, rows: rows, threads: threads)
    }
}
