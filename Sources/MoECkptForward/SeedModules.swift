import MoECkptKernels
import MoECkptModels
import MoECkptTensors

/// The reference PyTorch modules of the project's seeds, in eval mode (no dropout, no router noise),
/// computing exactly what their code computes.
public struct SeedModuleForward: Sendable {
    let architecture: Architecture
    /// Every tensor as fp32 values (biases, norms, gates).
    let weights: [String: [Float]]
    /// Every matrix (rank 2 or more) as the kernels read it, in place where it can be.
    let matrices: [String: WeightMatrix]

    public init(_ model: LoadedModel) throws(ForwardError) {
        architecture = model.architecture
        var weights: [String: [Float]] = [:]
        var matrices: [String: WeightMatrix] = [:]
        for tensor in model.tensors {
            weights[tensor.name] = try WeightReader.f32(tensor)
            if tensor.shape.count >= 2 { matrices[tensor.name] = try WeightMatrix(tensor) }
        }
        self.weights = weights
        self.matrices = matrices
    }

    func linear(_ prefix: String, inputs: Int, outputs: Int) -> LinearLayer {
        LinearLayer(weight: matrices[prefix + ".weight"]!, bias: weights[prefix + ".bias"], inputs: inputs, outputs: outputs)
    }

    /// A stack [count, outputs, inputs] (bias [count, outputs]) as one layer per expert.
    func experts(_ prefix: String, count: Int, inputs: Int, outputs: Int) -> ExpertLinears {
        let (stack, bias) = (matrices[prefix + ".weight"]!, weights[prefix + ".bias"])
        return ExpertLinears(layers: (0..<count).map { e in
            LinearLayer(weight: stack.advanced(by: e * outputs * inputs),
                        bias: bias.map { Array($0[(e * outputs)..<((e + 1) * outputs)]) }, inputs: inputs, outputs: outputs)
        })
    }

    /// Bytes a forward pass on inputs of this shape holds at its peak (nil when the count
    /// overflows): a few copies of the inputs, the experts' hidden rows (up to 4 x the width, for
    /// every expert a token may reach) and, for the block with attention, one sequence's block.
    public func bytesNeeded(inputs shape: [Int]) -> Int? {
        guard let elements = try? Shape.elementCount(shape) else { return nil }
        let experts: Int
        switch architecture {
        case .mixtureOfExperts(let c): experts = c.k * max(1, c.dFF / max(c.dModel, 1))
        case .mixtralBlock(let c): experts = c.k * 4
        case .switchTransformer: experts = 4
        case .basicMoE(let c): experts = c.numExperts * max(1, c.featureOut / max(c.featureIn, 1))
        case .sparseMoE(let c): experts = c.topK + c.sharedExpertsNumber
        case .mixtral: experts = 1
        }
        var attention = 0
        if case .mixtralBlock(let c) = architecture, shape.count == 3 {
            attention = HeadAttention.scratchBytes(tokens: shape[1], d: c.dModel / max(c.nHeads, 1))
        }
        return (Checked(elements) * (12 + 2 * experts) * 4 + attention).value
    }

    /// Runs the module on `inputs` (its last dimension the model width); returns `outputs` and,
    /// where the module has them, `aux_loss` and `router_logits`.
    public func forward(_ inputs: HostTensor, threads: Int = 1) throws(ForwardError) -> [String: HostTensor] {
        let width = inputs.columns
        let rows = inputs.rows
        func expectWidth(_ w: Int) throws(ForwardError) {
            guard width == w, !inputs.shape.isEmpty else {
                throw .badInput("inputs have shape \(inputs.shape); the model expects a last dimension of \(w)")
            }
        }
        switch architecture {
        case .mixtureOfExperts(let c):
            try expectWidth(c.dModel)
            let (out, aux) = topKMoE("", c.dModel, c.dFF, c.numExperts, c.k, inputs.values, rows: rows, threads: threads)
            return ["outputs": HostTensor(shape: inputs.shape, values: out), "aux_loss": .scalar(aux)]
        case .switchTransformer(let c):
            try expectWidth(c.dModel)
            guard inputs.shape.count == 3 else { throw .badInput("inputs must be [batch, seq_len, d_model], not \(inputs.shape)") }
            let out = switchLayer(c, inputs.values, sequenceLength: inputs.shape[1], rows: rows, threads: threads)
            return ["outputs": HostTensor(shape: inputs.shape, values: out)]
        case .mixtralBlock(let c):
            try expectWidth(c.dModel)
            guard inputs.shape.count == 3 else { throw .badInput("inputs must be [batch, seq_len, d_model], not \(inputs.shape)") }
            let (out, aux) = mixtralBlock(c, inputs.values, batch: inputs.shape[0], tokens: inputs.shape[1], threads: threads)
            return ["outputs": HostTensor(shape: inputs.shape, values: out), "aux_loss": .scalar(aux)]
        case .basicMoE(let c):
            try expectWidth(c.featureIn)
            guard inputs.shape.count == 2 else { throw .badInput("inputs must be [batch, feature_in], not \(inputs.shape)") }
            let out = basicMoE(c, inputs.values, rows: rows, threads: threads)
            return ["outputs": HostTensor(shape: [rows, c.featureOut], values: out)]
        case .sparseMoE(let c):
            try expectWidth(c.hiddenDim)
            let (out, logits) = sparseMoE(c, inputs.values, rows: rows, threads: threads)
            return ["outputs": HostTensor(shape: inputs.shape, values: out),
                    "router_logits": HostTensor(shape: [rows, c.expertNumber], values: logits)]
        case .mixtral:
            throw .badInput("a causal LM takes input_ids, not inputs")
        }
    }

    /// ReLU expert: w2(relu(w1 x + b1)) + b2, for expert e on the given rows.
    func reluExpert(_ prefix: String, _ e: Int, _ x: [Float], rows: Int, d: Int, dFF: Int, experts: Int, threads: Int) -> [Float] {
        var hidden = self.experts(prefix + "w1", count: experts, inputs: d, outputs: dFF).apply(expert: e, x, rows: rows, threads: threads)
        hidden.withUnsafeMutableBufferPointer { Activation.relu($0.baseAddress!, count: $0.count) }
        return self.experts(prefix + "w2", count: experts, inputs: dFF, outputs: d).apply(expert: e, hidden, rows: rows, threads: threads)
    }

    /// `MixtureOfExperts`: softmax router with bias, top-k renormalised gates, ReLU experts; and its
    /// load-balancing loss, sum_e (mean-probability share_e - 1/E)^2.
    func topKMoE(_ prefix: String, _ d: Int, _ dFF: Int, _ experts: Int, _ k: Int, _ x: [Float], rows: Int,
                 threads: Int) -> (output: [Float], aux: Float) {
        let logits = linear(prefix + "router", inputs: d, outputs: experts).apply(x, rows: rows, threads: threads)
        let probabilities = softmaxRows(logits, rows: rows, columns: experts)
        let routing = Routing.topK(probabilities, tokens: rows, experts: experts, k: k, renormalize: true)
        var output = [Float](repeating: 0, count: rows * d)
        for e in 0..<experts where !routing.tokens[e].isEmpty {
            let selected = routing.tokens[e]
            let y = reluExpert(prefix + "experts.", e, Routing.gather(x, width: d, rows: selected), rows: selected.count,
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

    /// `SwitchTransformer`: top-1 by argmax; per expert at most int(capacity_factor * seq_len / E)
    /// tokens of the whole batch, the most probable kept; dropped tokens give zero; outputs not
    /// scaled by the gate unless the config asks for the paper's variant.
    func switchLayer(_ c: SwitchConfig, _ x: [Float], sequenceLength: Int, rows: Int, threads: Int) -> [Float] {
        let (d, experts) = (c.dModel, c.numExperts)
        let logits = linear("router", inputs: d, outputs: experts).apply(x, rows: rows, threads: threads)
        let probabilities = softmaxRows(logits, rows: rows, columns: experts)
        let capacity = Int(min((c.capacityFactor * Double(sequenceLength) / Double(experts)).rounded(.towardZero), Double(rows)))
        var output = [Float](repeating: 0, count: rows * d)
        for e in 0..<experts {
            var routed: [Int] = []
            for t in 0..<rows {
                var best = 0
                for j in 1..<experts where logits[t * experts + j] > logits[t * experts + best] { best = j }
                if best == e { routed.append(t) }
            }
            if routed.count > capacity {
                routed = routed.sorted { probabilities[$0 * experts + e] > probabilities[$1 * experts + e]
                    || (probabilities[$0 * experts + e] == probabilities[$1 * experts + e] && $0 < $1) }
                routed = Array(routed.prefix(capacity)).sorted()
            }
            guard !routed.isEmpty else { continue }
            let y = reluExpert("experts.", e, Routing.gather(x, width: d, rows: routed), rows: routed.count,
                               d: d, dFF: 4 * d, experts: experts, threads: threads)
            let scale = c.scaleByRouterProbability ? routed.map { probabilities[$0 * experts + e] } : nil
            Routing.scatterAdd(y, width: d, rows: routed, weights: scale, into: &output)
        }
        return output
    }

    /// `MixtralBlock`: nn.MultiheadAttention (packed in_proj with biases, no mask), residual,
    /// LayerNorm; the MoE with d_ff = 4 d, residual, LayerNorm.
    func mixtralBlock(_ c: MixtralBlockConfig, _ x: [Float], batch: Int, tokens: Int, threads: Int) -> ([Float], Float) {
        let d = c.dModel
        let rows = batch * tokens
        let headDim = d / c.nHeads
        let projected = linear("attn.in_proj", inputs: d, outputs: 3 * d).apply(x, rows: rows, threads: threads)
        var context = [Float](repeating: 0, count: rows * d)
        let scaling = 1 / Float(headDim).squareRoot()
        for b in 0..<batch {
            let sequence = b * tokens..<(b + 1) * tokens
            for head in 0..<c.nHeads {
                let q = columns(projected, rows: sequence, width: 3 * d, from: head * headDim, count: headDim)
                let k = columns(projected, rows: sequence, width: 3 * d, from: d + head * headDim, count: headDim)
                let v = columns(projected, rows: sequence, width: 3 * d, from: 2 * d + head * headDim, count: headDim)
                let result = HeadAttention.attend(queries: q, keys: k, values: v, tokens: tokens, d: headDim, scaling: scaling,
                                                  mask: .none)
                for i in 0..<tokens {
                    for col in 0..<headDim { context[(b * tokens + i) * d + head * headDim + col] = result[i * headDim + col] }
                }
            }
        }
        let attention = linear("attn.out_proj", inputs: d, outputs: d).apply(context, rows: rows, threads: threads)
        let afterAttention = layerNorm("ln1", zip(x, attention).map { $0 + $1 }, rows: rows, width: d)
        let (moe, aux) = topKMoE("moe.", d, 4 * d, c.numExperts, c.k, afterAttention, rows: rows, threads: threads)
        return (layerNorm("ln2", zip(afterAttention, moe).map { $0 + $1 }, rows: rows, width: d), aux)
    }

    func layerNorm(_ prefix: String, _ x: [Float], rows: Int, width: Int) -> [Float] {
        var y = x
        x.withUnsafeBufferPointer { xp in
            weights[prefix + ".weight"]!.withUnsafeBufferPointer { w in
                weights[prefix + ".bias"]!.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { yp in
                        Norm.layer(xp.baseAddress!, rows: rows, columns: width, weight: w.baseAddress!, bias: b.baseAddress!,
                                   eps: 1e-5, into: yp.baseAddress!)
                    }
                }
            }
        }
        return y
    }

    /// `BasicMOE`: softmax(gate(x)) mixes every linear expert's output.
    func basicMoE(_ c: BasicMoEConfig, _ x: [Float], rows: Int, threads: Int) -> [Float] {
        let weights = softmaxRows(linear("gate", inputs: c.featureIn, outputs: c.numExperts).apply(x, rows: rows, threads: threads),
                                  rows: rows, columns: c.numExperts)
        let all = Array(0..<rows)
        var output = [Float](repeating: 0, count: rows * c.featureOut)
        for e in 0..<c.numExperts {
            let y = experts("experts.fc", count: c.numExperts, inputs: c.featureIn, outputs: c.featureOut)
                .apply(expert: e, x, rows: rows, threads: threads)
            Routing.scatterAdd(y, width: c.featureOut, rows: all, weights: all.map { weights[$0 * c.numExperts + e] },
                               into: &output)
        }
        return output
    }

    /// `SparseMOE`: softmax router with bias, top-k renormalised, linear experts; plus the shared
    /// experts' outputs when configured. Also returns the router logits.
    func sparseMoE(_ c: SparseMoEConfig, _ x: [Float], rows: Int, threads: Int) -> ([Float], [Float]) {
        let h = c.hiddenDim
        let logits = linear("router", inputs: h, outputs: c.expertNumber).apply(x, rows: rows, threads: threads)
        let routing = Routing.topK(softmaxRows(logits, rows: rows, columns: c.expertNumber), tokens: rows,
                                   experts: c.expertNumber, k: c.topK, renormalize: true)
        var output = [Float](repeating: 0, count: rows * h)
        let sparse = experts("experts.fc", count: c.expertNumber, inputs: h, outputs: h)
        for e in 0..<c.expertNumber where !routing.tokens[e].isEmpty {
            let selected = routing.tokens[e]
            let y = sparse.apply(expert: e, Routing.gather(x, width: h, rows: selected), rows: selected.count, threads: threads)
            Routing.scatterAdd(y, width: h, rows: selected, weights: routing.weights[e], into: &output)
        }
        if c.sharedExpertsNumber > 0 {
            let shared = experts("shared.fc", count: c.sharedExpertsNumber, inputs: h, outputs: h)
            var sum = [Float](repeating: 0, count: rows * h)
            let all = Array(0..<rows)
            for s in 0..<c.sharedExpertsNumber {
                Routing.scatterAdd(shared.apply(expert: s, x, rows: rows, threads: threads), width: h, rows: all,
                                   weights: nil, into: &sum)
            }
            for j in 0..<output.count { output[j] += sum[j] }
        }
        return (output, logits)
    }
}
