import MoECkptKernels
import MoECkptModels

#if canImport(Glibc)
import Glibc
#endif

/// Which experts each token goes to, and with what weight.
package struct Routing {
    /// For each expert, the tokens routed to it (ascending) and their gate weights.
    package var tokens: [[Int]]
    package var weights: [[Float]]

    /// Top-k of each row of `probabilities` [tokens, experts] (as torch.topk picks them, ties
    /// included), optionally renormalised over the k.
    package static func topK(_ probabilities: [Float], tokens: Int, experts: Int, k: Int, renormalize: Bool) -> Routing {
        route(
            probabilities, tokens: tokens, experts: experts, k: k, scoredAlready: true,
            semantics: RouterSemantics(renormalize: renormalize))
    }

    /// The experts and weights of each token from its router logits [tokens, experts];
    /// `selectionBias` [experts] when the semantics have one.
    package static func route(
        _ logits: [Float], tokens: Int, experts: Int, k: Int, semantics: RouterSemantics, selectionBias: [Float]? = nil
    ) -> Routing {
        route(logits, tokens: tokens, experts: experts, k: k, scoredAlready: false, semantics: semantics, bias: selectionBias)
    }

    private static func route(
        _ values: [Float], tokens: Int, experts: Int, k: Int, scoredAlready: Bool,
        semantics: RouterSemantics, bias: [Float]? = nil
    ) -> Routing {
        var routing = Routing(tokens: Array(repeating: [], count: experts), weights: Array(repeating: [], count: experts))
        let k = min(k, experts)
        for t in 0..<tokens {
            var row = Array(values[(t * experts)..<((t + 1) * experts)])
            var weights: [Float]
            let chosen: [Int]
            switch semantics.selection {
            case .topKOfScores:
                if !scoredAlready { score(&row, semantics.scoring) }
                if bias != nil || semantics.groups != nil {
                    chosen = limitedChoice(row, bias: bias, groups: semantics.groups, k: k)
                } else {
                    chosen = TorchTopK.indices(row, k: k)
                }
                weights = chosen.map { row[$0] }
                if semantics.renormalize {
                    var total: Float = 0
                    for w in weights { total += w }
                    if semantics.scoring == .sigmoid { total += 1e-20 }
                    weights = weights.map { $0 / total }
                }
            case .scoresOfTopK:
                chosen = TorchTopK.indices(row, k: k)
                weights = chosen.map { row[$0] }
                score(&weights, semantics.scoring)
            }
            if semantics.scale != 1 { weights = weights.map { $0 * Float(semantics.scale) } }
            for (e, w) in zip(chosen, weights).sorted(by: { $0.0 < $1.0 }) {
                routing.tokens[e].append(t)
                routing.weights[e].append(w)
            }
        }
        return routing
    }

    /// DeepSeek-V3's choice (transformers' `get_topk_indices`): on the scores plus the bias, each
    /// group scored by the sum of its two best, the best `used` groups kept (`topk(sorted=False)`),
    /// the other experts' choice scores set to -inf, then top-k (`sorted=False`).
    static func limitedChoice(_ scores: [Float], bias: [Float]?, groups: RouterSemantics.Groups?, k: Int) -> [Int] {
        var choice = bias.map { b in zip(scores, b).map { $0 + $1 } } ?? scores
        if let groups, groups.count > 1, choice.count % groups.count == 0 {
            let size = choice.count / groups.count
            let groupScores = (0..<groups.count).map { g -> Float in
                let best = TorchTopK.indices(Array(choice[(g * size)..<((g + 1) * size)]), k: 2)
                return best.reduce(Float(0)) { $0 + choice[g * size + $1] }
            }
            let kept = Set(TorchTopK.indices(groupScores, k: groups.used, sorted: false))
            for g in 0..<groups.count where !kept.contains(g) {
                for e in (g * size)..<((g + 1) * size) { choice[e] = -.infinity }
            }
        }
        return TorchTopK.indices(choice, k: k, sorted: false)
    }

    /// Softmax or sigmoid of one row, in place.
    static func score(_ row: inout [Float], _ scoring: RouterSemantics.Scoring) {
        switch scoring {
        case .softmax: row.withUnsafeMutableBufferPointer { Softmax.rows($0.baseAddress!, rows: 1, columns: $0.count) }
        case .sigmoid: row = row.map { 1 / (1 + expf(-$0)) }
        }
    }

    /// Rows `tokens` of x [*, width], gathered into a contiguous matrix.
    package static func gather(_ x: [Float], width: Int, rows: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * width)
        for (i, r) in rows.enumerated() {
            for c in 0..<width { out[i * width + c] = x[r * width + c] }
        }
        return out
    }

    /// output[token] += weight * y[i] for each routed token i (weight 1 when nil).
    package static func scatterAdd(_ y: [Float], width: Int, rows: [Int], weights: [Float]?, into output: inout [Float]) {
        for (i, r) in rows.enumerated() {
            let w = weights?[i]
            for c in 0..<width {
                let value = y[i * width + c]
                output[r * width + c] += w.map { value * $0 } ?? value
            }
        }
    }
}

/// Row-wise softmax of a copy.
package func softmaxRows(_ x: [Float], rows: Int, columns: Int) -> [Float] {
    var out = x
    out.withUnsafeMutableBufferPointer { Softmax.rows($0.baseAddress!, rows: rows, columns: columns) }
    return out
}

/// The auxiliary losses of sparse MoE training, over router logits of every layer.
public enum AuxiliaryLoss {
    /// transformers' `load_balancing_loss_func`: E * sum_e f_e * P_e, where f_e is the fraction of
    /// (token, slot) assignments to expert e per slot, summed over slots, and P_e the mean router
    /// probability; over all layers' logits concatenated.
    public static func loadBalancing(_ logits: [[Float]], experts: Int, k: Int) -> Float {
        let all = logits.flatMap { $0 }
        let tokens = all.count / experts
        guard tokens > 0 else { return 0 }
        let probabilities = softmaxRows(all, rows: tokens, columns: experts)
        let routing = Routing.topK(probabilities, tokens: tokens, experts: experts, k: k, renormalize: false)
        var loss: Float = 0
        for e in 0..<experts {
            let fraction = Float(routing.tokens[e].count) / Float(tokens)
            var meanProbability: Float = 0
            for t in 0..<tokens { meanProbability += probabilities[t * experts + e] }
            meanProbability /= Float(tokens)
            loss += fraction * meanProbability
        }
        return loss * Float(experts)
    }

    /// ST-MoE's router z-loss: the mean over tokens of logsumexp(logits)^2.
    public static func routerZ(_ logits: [[Float]], experts: Int) -> Float {
        let all = logits.flatMap { $0 }
        let tokens = all.count / experts
        guard tokens > 0 else { return 0 }
        var sum: Float = 0
        all.withUnsafeBufferPointer { p in
            for t in 0..<tokens {
                let z = Softmax.logSumExp(p.baseAddress! + t * experts, experts)
                sum += z * z
            }
        }
        return sum / Float(tokens)
    }
}
