import MoECkptFormats
import MoECkptForward
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// What the reference PyTorch modules of the project's seeds (`shared/seeds`) have in common:
/// their tensors are linear layers with biases, one per expert stacked, and their names are their
/// `state_dict()` names. Each module has its own file beside this one.
enum SeedTensors {
    /// A linear layer per expert, stacked: weight [n, out, in] and bias [n, out].
    static func experts(_ prefix: String, _ n: Int, _ out: Int, _ input: Int) -> [TensorRequirement] {
        [TensorRequirement(name: prefix + ".weight", shape: [n, out, input]), TensorRequirement(name: prefix + ".bias", shape: [n, out])]
    }

    /// A linear layer: weight [out, in] and bias [out].
    static func linear(_ prefix: String, _ out: Int, _ input: Int) -> [TensorRequirement] {
        [TensorRequirement(name: prefix + ".weight", shape: [out, input]), TensorRequirement(name: prefix + ".bias", shape: [out])]
    }
}

/// A seed module's config.json: its `model_type` and constructor arguments.
enum SeedConfig {
    static func json(_ modelType: String, _ fields: [(String, Int)]) -> JSONObject {
        JSONObject([("model_type", .string(modelType))] + fields.map { ($0.0, .integer($0.1)) })
    }
}

/// Layout rows of the seed modules' `state_dict()` names.
enum SeedLayoutRows {
    static func linear(_ stored: String, _ canonical: String) -> [LayoutEntry] {
        [LayoutEntry(stored + ".weight", canonical + ".weight"), LayoutEntry(stored + ".bias", canonical + ".bias")]
    }

    static func experts(_ stored: String, _ canonical: String) -> [LayoutEntry] {
        [
            LayoutEntry(stored + ".weight", canonical + ".weight", .perExpert),
            LayoutEntry(stored + ".bias", canonical + ".bias", .perExpert),
        ]
    }
}

/// A seed module's weights, in eval mode (no dropout, no router noise): every tensor as fp32
/// values (biases, norms, gates) and every matrix (rank 2 or more) as the kernels read it, in
/// place where it can be.
struct SeedModuleWeights: Sendable {
    let values: [String: [Float]]
    let matrices: [String: WeightMatrix]

    init(_ model: LoadedModel) throws(ForwardError) {
        var values: [String: [Float]] = [:]
        var matrices: [String: WeightMatrix] = [:]
        for tensor in model.tensors {
            values[tensor.name] = try WeightReader.f32(tensor)
            if tensor.shape.count >= 2 { matrices[tensor.name] = try WeightMatrix(tensor) }
        }
        self.values = values
        self.matrices = matrices
    }

    func linear(_ prefix: String, inputs: Int, outputs: Int) -> LinearLayer {
        LinearLayer(weight: matrices[prefix + ".weight"]!, bias: values[prefix + ".bias"], inputs: inputs, outputs: outputs)
    }

    /// A stack [count, outputs, inputs] (bias [count, outputs]) as one layer per expert.
    func experts(_ prefix: String, count: Int, inputs: Int, outputs: Int) -> ExpertLinears {
        let (stack, bias) = (matrices[prefix + ".weight"]!, values[prefix + ".bias"])
        return ExpertLinears(
            layers: (0..<count).map { e in
                LinearLayer(
                    weight: stack.advanced(by: e * outputs * inputs),
                    bias: bias.map { Array($0[(e * outputs)..<((e + 1) * outputs)]) }, inputs: inputs, outputs: outputs)
            })
    }

    /// ReLU expert: w2(relu(w1 x + b1)) + b2, for expert e on the given rows.
    func reluExpert(_ prefix: String, _ e: Int, _ x: [Float], rows: Int, d: Int, dFF: Int, experts: Int, threads: Int) -> [Float] {
        var hidden = self.experts(prefix + "w1", count: experts, inputs: d, outputs: dFF).apply(expert: e, x, rows: rows, threads: threads)
        hidden.withUnsafeMutableBufferPointer { Activation.relu($0.baseAddress!, count: $0.count) }
        return self.experts(prefix + "w2", count: experts, inputs: dFF, outputs: d).apply(expert: e, hidden, rows: rows, threads: threads)
    }

    /// `MixtureOfExperts`: softmax router with bias, top-k renormalised gates, ReLU experts; and its
    /// load-balancing loss, sum_e (mean-probability share_e - 1/E)^2.
    func topKMoE(
        _ prefix: String, _ d: Int, _ dFF: Int, _ experts: Int, _ k: Int, _ x: [Float], rows: Int,
        threads: Int
    ) -> (output: [Float], aux: Float) {
        let logits = linear(prefix + "router", inputs: d, outputs: experts).apply(x, rows: rows, threads: threads)
        let probabilities = softmaxRows(logits, rows: rows, columns: experts)
        let routing = Routing.topK(probabilities, tokens: rows, experts: experts, k: k, renormalize: true)
        var output = [Float](repeating: 0, count: rows * d)
        for e in 0..<experts where !routing.tokens[e].isEmpty {
            let selected = routing.tokens[e]
            let y = reluExpert(
                prefix + "experts.", e, Routing.gather(x, width: d, rows: selected), rows: selected.count,
                d: d, dFF: dFF, experts: experts, threads: threads)
            Routing.scatterAdd(y, width: d, rows: selected, weights: routing.weights[e], into: &output)
        }
        var counts = [Float](repeating: 0, count: experts)
        for t in 0..<rows { for e in 0..<experts { counts[e] += probabilities[t * experts + e] } }
        let total = counts.reduce(0, +)
        let aux = counts.reduce(Float(0)) { sum, count in
            let deviation = count / total - 1 / Float(experts)
            return sum + deviation * deviation
        }
        return (output, aux)
    }

    func layerNorm(_ prefix: String, _ x: [Float], rows: Int, width: Int) -> [Float] {
        var y = x
        x.withUnsafeBufferPointer { xp in
            values[prefix + ".weight"]!.withUnsafeBufferPointer { w in
                values[prefix + ".bias"]!.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { yp in
                        Norm.layer(
                            xp.baseAddress!, rows: rows, columns: width, weight: w.baseAddress!, bias: b.baseAddress!,
                            eps: 1e-5, into: yp.baseAddress!)
                    }
                }
            }
        }
        return y
    }
}

/// A seed module: a layer or block that runs on float `inputs` whose last dimension is its width.
protocol SeedModule: Architecture {
    /// The last dimension of its inputs.
    var inputWidth: Int { get }
    /// Hidden rows its experts hold at once per input row, in units of the input width (for
    /// every expert a token may reach: up to 4 x the width each).
    var expertRows: Int { get }
    /// Bytes of attention scratch a run on inputs of this shape needs (0: no attention).
    func attentionScratch(inputs shape: [Int]) -> Int
    /// What the module's `forward` returns.
    func forward(
        _ x: HostTensor, _ weights: SeedModuleWeights, threads: Int, auxLosses: Bool
    )
        throws(ForwardError) -> [OutputKey: HostTensor]
}

extension SeedModule {
    func attentionScratch(inputs shape: [Int]) -> Int { 0 }

    public func forwardPass(_ model: LoadedModel) throws(ForwardError) -> any ForwardPass {
        SeedModuleForward(module: self, weights: try SeedModuleWeights(model))
    }
}

/// The forward pass of a seed module on its weights.
struct SeedModuleForward<Module: SeedModule>: ForwardPass {
    let module: Module
    let weights: SeedModuleWeights

    var input: InputKey { .inputs }

    /// A few copies of the inputs, the experts' hidden rows and any attention scratch.
    func bytesNeeded(input shape: [Int], threads: Int) -> Int? {
        guard let elements = try? Shape.elementCount(shape) else { return nil }
        return (Checked(elements) * (12 + 2 * module.expertRows) * 4 + module.attentionScratch(inputs: shape)).value
    }

    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        guard case .values(let x) = input else { throw .badInput("the module takes inputs, not input_ids") }
        guard x.columns == module.inputWidth, !x.shape.isEmpty else {
            throw .badInput("inputs have shape \(x.shape); the model expects a last dimension of \(module.inputWidth)")
        }
        return try module.forward(x, weights, threads: threads, auxLosses: auxLosses)
    }
}
