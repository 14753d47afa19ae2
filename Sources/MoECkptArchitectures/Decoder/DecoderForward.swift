import MoECkptFormats
import MoECkptForward
import MoECkptKernels
import MoECkptModels
import MoECkptTensors

#if canImport(Glibc)
import Glibc
#endif

/// The forward pass of a `DecoderConfig` model, matching transformers' `*ForCausalLM` of each
/// family with eager attention, in fp32 (weights widened exactly, F32 and BF16 read in place).
public struct DecoderForward: Sendable {
    /// Shapes with h = hidden size, i = expert intermediate size, e = experts, d = head size,
    /// s = shared-expert intermediate size, m = dense intermediate size.
    struct Layer: Sendable {
        let attentionNorm: [Float]  // [h]
        let q: LinearLayer  // [heads * d, h] (+ bias); MLA: [heads * (nope + rope), h or q_lora]
        let k, v: LinearLayer?  // [kv_heads * d, h] (+ bias); nil with MLA (its latent has them)
        let o: LinearLayer  // [h, heads * d]; MLA: [h, heads * v_head_dim]
        let qNorm, kNorm: [Float]?  // [d] per head, or [heads * d] / [kv_heads * d] whole
        let sinks: [Float]?  // [heads]
        let window: Int?
        let latent: LatentLayer?
        let ffnNorm: [Float]  // [h]
        let mlp: MLP
    }

    /// Multi-head latent attention's other weights (`q` above is q_b, or the plain q_proj).
    struct LatentLayer: Sendable {
        let qA: LinearLayer?  // [q_lora, h]
        let qANorm: [Float]?  // [q_lora]
        let kvA: LinearLayer  // [kv_lora + rope, h]
        let kvANorm: [Float]  // [kv_lora]
        let kB: LinearLayer  // [heads * nope, kv_lora]
        let vB: LinearLayer  // [heads * v, kv_lora]
    }

    enum MLP: Sendable {
        case sparse(SparseBlock)
        case dense(GatedMLP)
    }

    struct SparseBlock: Sendable {
        let router: LinearLayer  // [e, h]
        let routerBias: [Float]?  // [e], for choosing experts only
        let experts: Experts
        let shared: GatedMLP?  // [s, h], [s, h], [h, s]
        let sharedGate: LinearLayer?  // [1, h]
    }

    enum Experts: Sendable {
        /// Read in place: gate and up e x [i, h], down e x [h, i].
        case stacked(gate: ExpertLinears, up: ExpertLinears, down: ExpertLinears)
        /// gpt-oss's: re-arranged copies with biases, through the clamped SwiGLU.
        case biased([GatedMLP])
    }

    /// down(act(gate x) * up x).
    struct GatedMLP: Sendable {
        let gate, up, down: LinearLayer
    }

    public let config: DecoderConfig
    let embedding: WeightMatrix  // [vocab, h], read in place: a lookup widens one row
    let layers: [Layer]
    let finalNorm: [Float]  // [h]
    let lmHead: LinearLayer  // [vocab, h] (the embedding when tied)

    public init(_ model: LoadedModel, config: DecoderConfig) throws(ForwardError) {
        self.config = config
        let w = WeightReader(model: model)
        let (h, e, i) = (config.hiddenSize, config.numExperts, config.expertIntermediate)
        let (qRows, kvRows) = (config.numHeads * config.headDim, config.numKVHeads * config.headDim)
        func linear(_ name: String, _ inputs: Int, _ outputs: Int, bias: String? = nil) throws(ForwardError) -> LinearLayer {
            LinearLayer(
                weight: try w.matrix(name), bias: try bias.map { (b) throws(ForwardError) in try w.f32(b) },
                inputs: inputs, outputs: outputs)
        }
        func gated(_ prefix: String, _ rows: Int) throws(ForwardError) -> GatedMLP {
            GatedMLP(
                gate: try linear(prefix + "gate", h, rows), up: try linear(prefix + "up", h, rows),
                down: try linear(prefix + "down", rows, h))
        }
        embedding = try w.matrix("embed")
        var layers: [Layer] = []
        for l in 0..<config.numLayers {
            let p = "layers.\(l)."
            let bias = config.attentionBias
            let mlp: MLP
            if config.isDense(l) {
                mlp = .dense(try gated(p + "mlp.", config.denseIntermediate))
            } else {
                mlp = .sparse(
                    SparseBlock(
                        router: try linear(p + "moe.router", h, e, bias: config.routerLogitBias ? p + "moe.router_logit_bias" : nil),
                        routerBias: config.routerSelectionBias ? try w.f32(p + "moe.router_bias") : nil,
                        experts: config.expertBiases
                            ? .biased(try Self.biasedExperts(w, prefix: p + "moe.", config: config))
                            : .stacked(
                                gate: try w.experts(p + "moe.gate", experts: e, inputs: h, outputs: i),
                                up: try w.experts(p + "moe.up", experts: e, inputs: h, outputs: i),
                                down: try w.experts(p + "moe.down", experts: e, inputs: i, outputs: h)),
                        shared: try config.sharedExpert.map { (s) throws(ForwardError) in try gated(p + "moe.shared.", s.intermediate) },
                        sharedGate: config.sharedExpert?.gated == true ? try linear(p + "moe.shared_gate", h, 1) : nil))
            }
            let norms = config.qkNorm == .none ? nil : (try w.f32(p + "attn.q_norm"), try w.f32(p + "attn.k_norm"))
            if let mla = config.latentAttention {
                let heads = config.numHeads
                let qA = try mla.qLoraRank.map { (rank) throws(ForwardError) in
                    try linear(p + "attn.q_a", h, rank, bias: mla.bias ? p + "attn.q_a_bias" : nil)
                }
                let latent = LatentLayer(
                    qA: qA, qANorm: mla.qLoraRank == nil ? nil : try w.f32(p + "attn.q_a_norm"),
                    kvA: try linear(p + "attn.kv_a", h, mla.kvLoraRank + mla.qkRopeHeadDim, bias: mla.bias ? p + "attn.kv_a_bias" : nil),
                    kvANorm: try w.f32(p + "attn.kv_a_norm"),
                    kB: try linear(p + "attn.k_b", mla.kvLoraRank, heads * mla.qkNopeHeadDim),
                    vB: try linear(p + "attn.v_b", mla.kvLoraRank, heads * mla.vHeadDim))
                let q = mla.qLoraRank.map { (rank: Int) in (p + "attn.q_b", rank) } ?? (p + "attn.q", h)
                let o = try linear(p + "attn.o", heads * mla.vHeadDim, h, bias: mla.bias ? p + "attn.o_bias" : nil)
                let query = try linear(q.0, q.1, heads * mla.qkHeadDim)
                layers.append(
                    Layer(
                        attentionNorm: try w.f32(p + "attn_norm"), q: query, k: nil, v: nil, o: o, qNorm: nil, kNorm: nil,
                        sinks: nil, window: config.window(ofLayer: l), latent: latent, ffnNorm: try w.f32(p + "ffn_norm"), mlp: mlp))
                continue
            }
            layers.append(
                Layer(
                    attentionNorm: try w.f32(p + "attn_norm"),
                    q: try linear(p + "attn.q", h, qRows, bias: bias ? p + "attn.q_bias" : nil),
                    k: try linear(p + "attn.k", h, kvRows, bias: bias ? p + "attn.k_bias" : nil),
                    v: try linear(p + "attn.v", h, kvRows, bias: bias ? p + "attn.v_bias" : nil),
                    o: try linear(p + "attn.o", qRows, h, bias: config.attentionOutputBias ? p + "attn.o_bias" : nil),
                    qNorm: norms?.0, kNorm: norms?.1, sinks: config.attentionSinks ? try w.f32(p + "attn.sinks") : nil,
                    window: config.window(ofLayer: l),
                    latent: nil,
                    ffnNorm: try w.f32(p + "ffn_norm"), mlp: mlp))
        }
        self.layers = layers
        finalNorm = try w.f32("final_norm")
        // A tied head is the embedding's own matrix (one mapping, or one widened copy).
        lmHead =
            config.tieWordEmbeddings
            ? LinearLayer(weight: embedding, bias: nil, inputs: h, outputs: config.vocabSize)
            : try linear("lm_head", h, config.vocabSize)
    }

    /// A model of the given shape with seeded random weights (uniform, scaled by 1/sqrt(fan-in)),
    /// every layer sparse, for benchmarks; the matrices in `weights` (F32, or BF16 and F16 rounded
    /// to nearest even, or blocks).
    public init(synthetic config: DecoderConfig, weights: MatrixWeightType = .f32, seed: UInt64 = 42) {
        var state = seed
        func random(_ count: Int, fanIn: Int) -> [Float] {
            let scale = 1 / Float(fanIn).squareRoot()
            return (0..<count).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
            }
        }
        func matrix(_ count: Int, fanIn: Int) -> WeightMatrix {
            let values = random(count, fanIn: fanIn)
            return switch weights {
            case .f32: WeightMatrix(values)
            case .bf16: WeightMatrix(bf16: values.map { FloatBits.f32ToBF16($0.bitPattern) })
            case .f16: WeightMatrix(f16: values.map { FloatBits.f32ToF16($0.bitPattern) })
            case .mxfp4: WeightMatrix(blocks: MXFP4Blocks.quantize(values, columns: fanIn), type: .mxfp4)
            case .q8_0, .q4_0:
                WeightMatrix(
                    blocks: values.withUnsafeBufferPointer { x in
                        [UInt8](unsafeUninitializedCapacity: weights.bytes(count)) { out, initialized in
                            (weights == .q8_0 ? GGMLType.q8_0 : .q4_0).quantizer!(x.baseAddress!, count, out.baseAddress!)
                            initialized = weights.bytes(count)
                        }
                    }, type: weights)
            case .q4_K, .q5_K, .q6_K:
                // No k-quant quantizer here: seeded random codes under fixed small scales, for speed only.
                WeightMatrix(blocks: syntheticKQuantBlocks(count, type: weights), type: weights)
            case .mlx2, .mlx4, .mlx8: mlxMatrix(values, fanIn: fanIn, type: weights)
            case .mlxE2M1: mxfp4Matrix(values, fanIn: fanIn)
            case .f8e4m3:
                // Seeded codes of magnitude below 2 (exponent field under 8), for speed only.
                WeightMatrix(
                    fp8: syntheticBytes(count).map { $0 & 0xBF }, columns: fanIn,
                    blockScales: [Float](
                        repeating: 1 / Float(fanIn).squareRoot(), count: ((count / fanIn + 127) / 128) * ((fanIn + 127) / 128)))
            }
        }
        /// mlx-lm's quantization of the values (groups of 64), as its checkpoints hold them.
        func mlxMatrix(_ values: [Float], fanIn: Int, type: MatrixWeightType) -> WeightMatrix {
            let bits = type.bytes(8)  // the bytes of 8 codes are the bits of one
            let (rows, groups) = (values.count / fanIn, fanIn / 64)
            var words = [UInt32](repeating: 0, count: values.count * bits / 32)
            var scales = [Float](repeating: 0, count: rows * groups)
            var biases = scales
            MLXAffine.quantize(
                values, rows: rows, columns: fanIn, bits: bits, groupSize: 64, codes: &words, scales: &scales, biases: &biases)
            return WeightMatrix(
                mlx: words.withUnsafeBytes { Array($0) }, type: type, columns: fanIn, groupSize: 64, scales: scales, biases: biases)
        }
        /// mlx-lm's mxfp4 quantization of the values (E2M1 codes, an E8M0 scale per 32).
        func mxfp4Matrix(_ values: [Float], fanIn: Int) -> WeightMatrix {
            let rows = values.count / fanIn
            var words = [UInt32](repeating: 0, count: values.count / 8)
            var codes = [UInt8](repeating: 0, count: values.count / 32)
            values.withUnsafeBufferPointer { v in
                MLXMicroscaled.quantize(
                    v.baseAddress!, rows: rows, columns: fanIn, mode: .mxfp4, dtype: .f32, codes: &words, scales: &codes)
            }
            return WeightMatrix(
                mlx: words.withUnsafeBytes { Array($0) }, type: .mlxE2M1, columns: fanIn, groupSize: 32,
                scales: codes.map { MLXQuantization.Mode.mxfp4.scale(ofCode: $0) }, biases: nil)
        }
        func syntheticBytes(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            for i in bytes.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes[i] = UInt8(truncatingIfNeeded: state >> 56)
            }
            return bytes
        }
        func syntheticKQuantBlocks(_ count: Int, type: MatrixWeightType) -> [UInt8] {
            var bytes = syntheticBytes(type.bytes(count))
            let blockBytes = type.bytes(256), small: UInt16 = 0x1C00  // F16 2^-8
            for block in stride(from: 0, to: bytes.count, by: blockBytes) {
                // The F16 scales: d and dmin first for Q4_K and Q5_K, d last for Q6_K.
                for offset in type == .q6_K ? [208] : [0, 2] {
                    bytes[block + offset] = UInt8(small & 0xFF)
                    bytes[block + offset + 1] = UInt8(small >> 8)
                }
            }
            return bytes
        }
        func linear(_ inputs: Int, _ outputs: Int) -> LinearLayer {
            LinearLayer(weight: matrix(inputs * outputs, fanIn: inputs), inputs: inputs, outputs: outputs)
        }
        func experts(_ inputs: Int, _ outputs: Int) -> ExpertLinears {
            ExpertLinears(layers: (0..<config.numExperts).map { _ in linear(inputs, outputs) })
        }
        let (h, e, i) = (config.hiddenSize, config.numExperts, config.expertIntermediate)
        let (qRows, kvRows) = (config.numHeads * config.headDim, config.numKVHeads * config.headDim)
        self.config = config
        embedding = WeightMatrix(random(config.vocabSize * h, fanIn: 1))
        layers = (0..<config.numLayers).map { _ in
            Layer(
                attentionNorm: [Float](repeating: 1, count: h),
                q: linear(h, qRows), k: linear(h, kvRows), v: linear(h, kvRows), o: linear(qRows, h), qNorm: nil, kNorm: nil,
                sinks: nil, window: config.slidingWindow, latent: nil,
                ffnNorm: [Float](repeating: 1, count: h),
                mlp: .sparse(
                    SparseBlock(
                        router: linear(h, e), routerBias: nil,
                        experts: .stacked(gate: experts(h, i), up: experts(h, i), down: experts(i, h)), shared: nil,
                        sharedGate: nil)))
        }
        finalNorm = [Float](repeating: 1, count: h)
        lmHead = linear(h, config.vocabSize)
    }

    /// The sparse MoE block of the first sparse layer on `rows` tokens [rows, hidden] (benchmarks).
    public func moeBlock(_ x: [Float], rows: Int, threads: Int) -> [Float] {
        for layer in layers {
            if case .sparse(let block) = layer.mlp { return sparseMoE(block, x, rows: rows, threads: threads).output }
        }
        return x
    }

    /// What one forward pass produces.
    public struct Outputs: Sendable {
        /// [batch * tokens, vocab]
        public var logits: [Float]
        /// transformers' `output_hidden_states`: the embeddings, each layer's output but the last,
        /// and the final-norm output; each [batch * tokens, hidden].
        public var hiddenStates: [[Float]]
        /// Per MoE layer (by decoder-layer index), [batch * tokens, experts].
        public var routerLogits: [(layer: Int, logits: [Float])]
    }

    /// Bytes a forward pass of `batch` x `tokens` holds at its peak beyond the weights (nil when
    /// the count overflows): the outputs kept for every token (logits, hidden states, router
    /// logits), one layer's activations, and each thread's attention block.
    public static func bytesNeeded(_ config: DecoderConfig, batch: Int, tokens: Int, threads: Int) -> Int? {
        let (h, l, e) = (config.hiddenSize, config.numLayers, config.numExperts)
        let (q, kv) = (config.numHeads * config.headDim, config.numKVHeads * config.headDim)
        let outputs = Checked(config.vocabSize) + Checked(l + 2) * h + Checked(l) * e
        // hidden, two norms, attention and MoE outputs; q, k, v, context; each token's expert rows
        // (and the shared expert's or a dense layer's).
        let widest = max(
            config.expertsPerToken * config.expertIntermediate + (config.sharedExpert?.intermediate ?? 0),
            config.denseIntermediate)
        let activations = Checked(h) * 6 + Checked(q) * 2 + Checked(kv) * 2 + Checked(widest) * 3
        let perToken = (outputs + activations) * 4 + 16  // + the token ids, read twice
        let attention = Checked(HeadAttention.scratchBytes(tokens: tokens, d: config.headDim)) * max(threads, 1)
        return (Checked(batch) * tokens * (perToken.value ?? Int.max) + attention).value
    }

    /// Runs `ids` [batch][tokens] (every sequence the same length).
    public func forward(_ ids: [[Int]], threads: Int = 1) throws(ForwardError) -> Outputs {
        let batch = ids.count
        let tokens = ids.first?.count ?? 0
        guard ids.allSatisfy({ $0.count == tokens }) else { throw .badInput("input_ids rows differ in length") }
        let h = config.hiddenSize
        let n = batch * tokens
        var hidden = [Float](repeating: 0, count: n * h)
        let embeddingScale = Float(config.embeddingMultiplier)
        for (b, sequence) in ids.enumerated() {
            for (t, id) in sequence.enumerated() {
                guard id >= 0 && id < config.vocabSize else {
                    throw .badInput("input_ids holds token \(id), outside the vocabulary of \(config.vocabSize)")
                }
                hidden.withUnsafeMutableBufferPointer {
                    embedding.widenRow(id, columns: h, into: $0.baseAddress! + (b * tokens + t) * h)
                }
            }
        }
        if embeddingScale != 1 { hidden = hidden.map { $0 * embeddingScale } }
        let rotary: Rotary
        if let yarn = config.yarn {
            let (frequencies, scale) = Rotary.yarn(
                headDim: config.headDim, theta: config.ropeTheta, factor: yarn.factor, originalMaxPositions: yarn.originalMaxPositions,
                betaFast: yarn.betaFast, betaSlow: yarn.betaSlow, truncate: yarn.truncate, attentionFactor: yarn.attentionFactor,
                mscale: yarn.mscale, mscaleAllDim: yarn.mscaleAllDim)
            rotary = Rotary(headDim: config.headDim, inverseFrequency: frequencies, positions: tokens, scale: scale)
        } else {
            rotary = Rotary(headDim: config.headDim, theta: config.ropeTheta, positions: tokens)
        }
        let residualScale = Float(config.residualMultiplier)
        var hiddenStates: [[Float]] = [hidden]
        var routerLogits: [(layer: Int, logits: [Float])] = []
        for (index, layer) in layers.enumerated() {
            let normed = rmsNorm(hidden, layer.attentionNorm)
            let attention = attend(layer, normed, batch: batch, tokens: tokens, rotary: rotary, threads: threads)
            addResidual(&hidden, attention, residualScale)
            let x = rmsNorm(hidden, layer.ffnNorm)
            switch layer.mlp {
            case .sparse(let block):
                let (moe, logits) = sparseMoE(block, x, rows: n, threads: threads)
                addResidual(&hidden, moe, residualScale)
                routerLogits.append((index, logits))
            case .dense(let mlp):
                addResidual(&hidden, gatedMLP(mlp, x, rows: n, threads: threads), residualScale)
            }
            if index < layers.count - 1 { hiddenStates.append(hidden) }
        }
        let final = rmsNorm(hidden, finalNorm)
        hiddenStates.append(final)
        var logits = lmHead.apply(final, rows: n, threads: threads)
        if config.logitsScaling != 1 {
            let divisor = Float(config.logitsScaling)
            logits = logits.map { $0 / divisor }
        }
        return Outputs(logits: logits, hiddenStates: hiddenStates, routerLogits: routerLogits)
    }

    func addResidual(_ hidden: inout [Float], _ output: [Float], _ scale: Float) {
        if scale == 1 {
            for j in 0..<hidden.count { hidden[j] += output[j] }
        } else {
            for j in 0..<hidden.count { hidden[j] += output[j] * scale }
        }
    }

    /// RMSNorm of each run of `weight.count` values of x.
    func rmsNorm(_ x: [Float], _ weight: [Float]) -> [Float] {
        var y = x
        let columns = weight.count
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    Norm.rms(
                        xp.baseAddress!, rows: x.count / max(columns, 1), columns: columns, weight: wp.baseAddress!,
                        eps: Float(config.rmsNormEps), into: yp.baseAddress!)
                }
            }
        }
        return y
    }

    /// Grouped-query causal self-attention (optionally within a sliding window), rotary on q and k,
    /// after the family's clamp and query/key norms.
    func attend(_ layer: Layer, _ x: [Float], batch: Int, tokens: Int, rotary: Rotary, threads: Int) -> [Float] {
        if let latent = layer.latent, let mla = config.latentAttention {
            return attendLatent(layer, latent, mla, x, batch: batch, tokens: tokens, rotary: rotary, threads: threads)
        }
        let n = batch * tokens
        let (heads, kvHeads, d) = (config.numHeads, config.numKVHeads, config.headDim)
        var q = layer.q.apply(x, rows: n, threads: threads)
        guard let kProjection = layer.k, let vProjection = layer.v else { return [Float](repeating: 0, count: n * config.hiddenSize) }
        var k = kProjection.apply(x, rows: n, threads: threads)
        var v = vProjection.apply(x, rows: n, threads: threads)
        if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
            q = rmsNorm(q, qNorm)
            k = rmsNorm(k, kNorm)
        }
        if let clip = config.clipQKV.map(Float.init) {
            q = q.map { min(max($0, -clip), clip) }
            k = k.map { min(max($0, -clip), clip) }
            v = v.map { min(max($0, -clip), clip) }
        }
        for row in 0..<n {
            let position = row % tokens
            q.withUnsafeMutableBufferPointer { p in
                for head in 0..<heads { rotary.apply(p.baseAddress! + row * heads * d + head * d, position: position) }
            }
            k.withUnsafeMutableBufferPointer { p in
                for head in 0..<kvHeads { rotary.apply(p.baseAddress! + row * kvHeads * d + head * d, position: position) }
            }
        }
        let scaling = config.attentionScale.map(Float.init) ?? 1 / Float(d).squareRoot()
        let group = heads / kvHeads
        let (qs, ks, vs) = (q, k, v)
        let context = attendHeads(layer, batch: batch, tokens: tokens, d: d, outputWidth: d, scaling: scaling, threads: threads) {
            b, head in
            let (rows, kvHead) = (b * tokens..<(b + 1) * tokens, head / group)
            return (
                columns(qs, rows: rows, width: heads * d, from: head * d, count: d),
                columns(ks, rows: rows, width: kvHeads * d, from: kvHead * d, count: d),
                columns(vs, rows: rows, width: kvHeads * d, from: kvHead * d, count: d)
            )
        }
        return layer.o.apply(context, rows: n, threads: threads)
    }

    /// Causal attention of every (sequence, head), side by side on the threads: `slice` gives the
    /// head's queries, keys and values [tokens, d]; the first `outputWidth` columns of each result
    /// make the head's part of the context [batch * tokens, heads * outputWidth].
    func attendHeads(
        _ layer: Layer, batch: Int, tokens: Int, d: Int, outputWidth: Int, scaling: Float, threads: Int,
        slice: @escaping @Sendable (_ sequence: Int, _ head: Int) -> ([Float], [Float], [Float])
    ) -> [Float] {
        let heads = config.numHeads
        var context = [Float](repeating: 0, count: batch * tokens * heads * outputWidth)
        let (window, sinks) = (layer.window, layer.sinks)
        context.withUnsafeMutableBufferPointer { out in
            let output = SendablePointer(out.baseAddress!)
            Parallel.ranges(batch * heads, threads: threads) { jobs in
                for job in jobs {
                    let (b, head) = (job / heads, job % heads)
                    let (queries, keys, values) = slice(b, head)
                    let result = HeadAttention.attend(
                        queries: queries, keys: keys, values: values, tokens: tokens, d: d,
                        scaling: scaling, mask: .causal(window: window), sink: sinks?[head])
                    for i in 0..<tokens {
                        for c in 0..<outputWidth {
                            output.base[((b * tokens + i) * heads + head) * outputWidth + c] = result[i * d + c]
                        }
                    }
                }
            }
        }
        return context
    }

    /// Multi-head latent attention: q = q_b(norm(q_a x)) (or q_proj x), split per head into
    /// [nope | rope]; the latent kv_a x = [c | k_rope], c normed and expanded by k_b and v_b into
    /// each head's k_nope and v; the rotary key is shared by the heads. Rotary on the rope parts only
    /// (de-interleaved first when stored in pairs, as transformers' `apply_rotary_pos_emb_interleave`
    /// leaves them); scores scaled by 1 / sqrt(nope + rope), causal.
    func attendLatent(
        _ layer: Layer, _ latent: LatentLayer, _ mla: DecoderConfig.LatentAttention, _ x: [Float], batch: Int, tokens: Int,
        rotary: Rotary, threads: Int
    ) -> [Float] {
        let n = batch * tokens
        let heads = config.numHeads
        let (nope, rope, dv, dqk) = (mla.qkNopeHeadDim, mla.qkRopeHeadDim, mla.vHeadDim, mla.qkHeadDim)
        var qInput = x
        if let qA = latent.qA, let norm = latent.qANorm { qInput = rmsNorm(qA.apply(x, rows: n, threads: threads), norm) }
        var q = layer.q.apply(qInput, rows: n, threads: threads)  // [n, heads * dqk]
        let compressed = latent.kvA.apply(x, rows: n, threads: threads)  // [n, kv_lora + rope]
        let width = mla.kvLoraRank + rope
        var c = [Float](repeating: 0, count: n * mla.kvLoraRank)
        var kRope = [Float](repeating: 0, count: n * rope)
        for r in 0..<n {
            for j in 0..<mla.kvLoraRank { c[r * mla.kvLoraRank + j] = compressed[r * width + j] }
            for j in 0..<rope { kRope[r * rope + j] = compressed[r * width + mla.kvLoraRank + j] }
        }
        let latentKV = rmsNorm(c, latent.kvANorm)
        let kNope = latent.kB.apply(latentKV, rows: n, threads: threads)  // [n, heads * nope]
        let v = latent.vB.apply(latentKV, rows: n, threads: threads)  // [n, heads * dv]
        func rotate(_ values: UnsafeMutablePointer<Float>, position: Int) {
            if mla.ropeInterleave {
                let pairs = (0..<rope).map { values[$0] }
                for i in 0..<(rope / 2) {
                    values[i] = pairs[2 * i]
                    values[rope / 2 + i] = pairs[2 * i + 1]
                }
            }
            rotary.apply(values, position: position)
        }
        for row in 0..<n {
            q.withUnsafeMutableBufferPointer { p in
                for head in 0..<heads { rotate(p.baseAddress! + row * heads * dqk + head * dqk + nope, position: row % tokens) }
            }
            kRope.withUnsafeMutableBufferPointer { p in rotate(p.baseAddress! + row * rope, position: row % tokens) }
        }
        // Each head attends with width d = max(qk, v): zero padding leaves the scores and the
        // weighted sums unchanged.
        let d = max(dqk, dv)
        let scaling = config.attentionScale.map(Float.init) ?? 1 / Float(dqk).squareRoot()
        let (qs, ks, vs, kr) = (q, kNope, v, kRope)
        let context = attendHeads(layer, batch: batch, tokens: tokens, d: d, outputWidth: dv, scaling: scaling, threads: threads) {
            b, head in
            var queries = [Float](repeating: 0, count: tokens * d)
            var keys = queries, values = queries
            for i in 0..<tokens {
                let r = b * tokens + i
                for j in 0..<dqk { queries[i * d + j] = qs[r * heads * dqk + head * dqk + j] }
                for j in 0..<nope { keys[i * d + j] = ks[(r * heads + head) * nope + j] }
                for j in 0..<rope { keys[i * d + nope + j] = kr[r * rope + j] }
                for j in 0..<dv { values[i * d + j] = vs[(r * heads + head) * dv + j] }
            }
            return (queries, keys, values)
        }
        return layer.o.apply(context, rows: n, threads: threads)
    }

    /// The router (as the family's `RouterSemantics` says), each expert run once on its tokens:
    /// down(act(gate x) * up x), weighted and added in expert order; then the shared expert.
    func sparseMoE(_ block: SparseBlock, _ x: [Float], rows: Int, threads: Int) -> (output: [Float], routerLogits: [Float]) {
        let e = config.numExperts
        let logits = block.router.apply(x, rows: rows, threads: threads)
        let routing = Routing.route(
            logits, tokens: rows, experts: e, k: config.expertsPerToken, semantics: config.router, selectionBias: block.routerBias)
        var output = [Float](repeating: 0, count: rows * config.hiddenSize)
        switch block.experts {
        case .biased(let experts):
            let (h, swiglu) = (config.hiddenSize, config.clampedSwiGLU ?? .init(limit: .infinity, alpha: 1))
            for (e, expert) in experts.enumerated() where !routing.tokens[e].isEmpty {
                let selected = routing.tokens[e]
                let input = Routing.gather(x, width: h, rows: selected)
                var gate = expert.gate.apply(input, rows: selected.count, threads: threads)
                let up = expert.up.apply(input, rows: selected.count, threads: threads)
                for j in 0..<gate.count {
                    let g = min(gate[j], swiglu.limit)
                    let u = min(max(up[j], -swiglu.limit), swiglu.limit)
                    gate[j] = (u + 1) * (g / (1 + expf(-g * swiglu.alpha)))
                }
                let y = expert.down.apply(gate, rows: selected.count, threads: threads)
                Routing.scatterAdd(y, width: h, rows: selected, weights: routing.weights[e], into: &output)
            }
        case .stacked(let gate, let up, let down):
            x.withUnsafeBufferPointer { xp in
                output.withUnsafeMutableBufferPointer { out in
                    ExpertFeedForward(
                        gate: gate, up: up, down: down, hidden: config.hiddenSize, intermediate: config.expertIntermediate,
                        activation: config.activation, threads: threads
                    )
                    .run(routing, x: xp.baseAddress!, into: out.baseAddress!)
                }
            }
        }
        if let shared = block.shared {
            var y = gatedMLP(shared, x, rows: rows, threads: threads)
            if let gate = block.sharedGate {
                let g = gate.apply(x, rows: rows, threads: threads)
                let h = config.hiddenSize
                for r in 0..<rows {
                    let s = 1 / (1 + expf(-g[r]))
                    for c in 0..<h { y[r * h + c] *= s }
                }
            }
            for j in 0..<output.count { output[j] += y[j] }
        }
        return (output, logits)
    }

    /// gpt-oss's experts with their biases, each as layers of its own over the stacked weights
    /// (in place: F32, BF16, or MXFP4 blocks).
    static func biasedExperts(_ w: WeightReader, prefix: String, config: DecoderConfig) throws(ForwardError) -> [GatedMLP] {
        let (e, h, i) = (config.numExperts, config.hiddenSize, config.expertIntermediate)
        let gate = try w.matrix(prefix + "gate"), up = try w.matrix(prefix + "up"), down = try w.matrix(prefix + "down")
        let gateBias = try w.f32(prefix + "gate_bias"), upBias = try w.f32(prefix + "up_bias")
        let downBias = try w.f32(prefix + "down_bias")
        func slice(_ values: [Float], _ x: Int, _ count: Int) -> [Float] { Array(values[(x * count)..<((x + 1) * count)]) }
        return (0..<e).map { x in
            GatedMLP(
                gate: LinearLayer(weight: gate.advanced(by: x * i * h), bias: slice(gateBias, x, i), inputs: h, outputs: i),
                up: LinearLayer(weight: up.advanced(by: x * i * h), bias: slice(upBias, x, i), inputs: h, outputs: i),
                down: LinearLayer(weight: down.advanced(by: x * h * i), bias: slice(downBias, x, h), inputs: i, outputs: h))
        }
    }

    /// down(act(gate x) * up x) on every row.
    func gatedMLP(_ mlp: GatedMLP, _ x: [Float], rows: Int, threads: Int) -> [Float] {
        var gate = mlp.gate.apply(x, rows: rows, threads: threads)
        let up = mlp.up.apply(x, rows: rows, threads: threads)
        gate.withUnsafeMutableBufferPointer { g in
            up.withUnsafeBufferPointer { u in config.activation.multiply(g.baseAddress!, u.baseAddress!, count: g.count) }
        }
        return mlp.down.apply(gate, rows: rows, threads: threads)
    }
}

/// The experts of one MoE block on their tokens, in the kernels' layout: each expert's tokens are
/// gathered into token panels once, its three projections chain panel to panel, and the result is
/// added back, weighted, to the tokens' rows. An expert with few tokens runs on rows, as dot
/// products.
///
/// Several experts run side by side, one per thread, largest first; a lone expert splits its
/// products between the threads instead. Either way each output element is computed by the same
/// operations, and the results are added in expert order, so the output does not depend on the
/// thread count.
struct ExpertFeedForward {
    let gate, up, down: ExpertLinears
    let hidden: Int
    let intermediate: Int
    let activation: GatedActivation
    let threads: Int

    func run(
        _ routing: Routing, x: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>
    ) {
        let h = hidden
        let active = (0..<routing.tokens.count).filter { !routing.tokens[$0].isEmpty }
        let largestFirst = active.indices.sorted { (routing.tokens[active[$0]].count, $1) > (routing.tokens[active[$1]].count, $0) }
        let results = active.map { e in
            let count = routing.tokens[e].count
            return SendablePointer(UnsafeMutablePointer<Float>.allocate(capacity: h * layout(count).padded(count)))
        }
        defer { for result in results { result.base.deallocate() } }
        let threadsPerExpert = active.count >= threads ? 1 : threads
        let input = SendableConstPointer(x)
        Parallel.dynamic(active.count, threads: threads / threadsPerExpert) { job in
            let index = largestFirst[job]
            routing.tokens[active[index]].withUnsafeBufferPointer { selected in
                expert(active[index], x: input.base, tokens: selected, into: results[index].base, threads: threadsPerExpert)
            }
        }
        for (index, e) in active.enumerated() {
            routing.tokens[e].withUnsafeBufferPointer { selected in
                routing.weights[e].withUnsafeBufferPointer { weights in
                    layout(selected.count).scatterAdd(
                        results[index].base, features: h, rows: selected, weights: weights,
                        into: output)
                }
            }
        }
    }

    /// Whether an expert's `count` tokens run as dot products on rows (`Linear.runsOnRows`) in
    /// all three of its projections.
    func runsOnRows(_ count: Int) -> Bool {
        guard let first = gate.layers.first else { return true }
        return Linear.runsOnRows(first.weight.type, inputs: hidden, tokens: count)
            && Linear.runsOnRows(up.layers[0].weight.type, inputs: hidden, tokens: count)
            && Linear.runsOnRows(down.layers[0].weight.type, inputs: intermediate, tokens: count)
    }

    /// Where an expert with `count` tokens keeps its activations: rows (panels one token wide) for
    /// dot products, else the kernels' token panels.
    func layout(_ count: Int) -> TokenPanels {
        runsOnRows(count) ? TokenPanels(width: 1) : TokenPanels()
    }

    /// down(act(gate x) * up x) for one expert's tokens, into `result`, in `layout(tokens)`.
    func expert(
        _ e: Int, x: UnsafePointer<Float>, tokens selected: UnsafeBufferPointer<Int>,
        into result: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let (h, i) = (hidden, intermediate)
        let (w1, w3, w2) = (gate.layers[e].weight, up.layers[e].weight, down.layers[e].weight)
        let count = selected.count
        let panels = layout(count)
        let padded = panels.padded(count)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: h * padded)
        let gate = UnsafeMutablePointer<Float>.allocate(capacity: i * padded)
        let up = UnsafeMutablePointer<Float>.allocate(capacity: i * padded)
        defer {
            input.deallocate()
            gate.deallocate()
            up.deallocate()
        }
        withExtendedLifetime((w1.owner, w3.owner, w2.owner)) {
            panels.gather(x, features: h, rows: selected, into: input, threads: threads)
            if runsOnRows(count) {
                Linear.multiplyRows(
                    w1.type, weight: w1.base, scales: w1.scales, outputs: i, inputs: h, x: input, tokens: count, y: gate, threads: threads)
                Linear.multiplyRows(
                    w3.type, weight: w3.base, scales: w3.scales, outputs: i, inputs: h, x: input, tokens: count, y: up, threads: threads)
                activation.multiply(gate, up, count: count * i)
                Linear.multiplyRows(
                    w2.type, weight: w2.base, scales: w2.scales, outputs: h, inputs: i, x: gate, tokens: count, y: result, threads: threads)
            } else {
                // The kernels may skip the padding columns of the last panel; zeros keep them finite.
                let lastPanel = (padded - panels.width) * i
                (gate + lastPanel).initialize(repeating: 0, count: i * panels.width)
                (up + lastPanel).initialize(repeating: 0, count: i * panels.width)
                Linear.multiply(
                    w1.type, weight: w1.base, scales: w1.scales, outputs: i, inputs: h, x: input, tokens: count, y: gate, threads: threads)
                Linear.multiply(
                    w3.type, weight: w3.base, scales: w3.scales, outputs: i, inputs: h, x: input, tokens: count, y: up, threads: threads)
                activation.multiply(gate, up, count: i * padded)
                Linear.multiply(
                    w2.type, weight: w2.base, scales: w2.scales, outputs: h, inputs: i, x: gate, tokens: count, y: result, threads: threads)
            }
        }
    }
}

extension DecoderForward: ForwardPass {
    public var input: InputKey { .inputIDs }

    public func bytesNeeded(input shape: [Int], threads: Int) -> Int? {
        guard shape.count == 2 else { return nil }
        return Self.bytesNeeded(config, batch: shape[0], tokens: shape[1], threads: threads)
    }

    /// `logits` [batch, tokens, vocab], `hidden_states.N` [batch, tokens, hidden] and
    /// `router_logits.L` [batch * tokens, experts] for each MoE layer L, as transformers returns
    /// them; with `auxLosses`, the load-balancing loss and router z-loss over those logits.
    public func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor] {
        guard case .tokenIDs(let ids) = input else { throw .badInput("a causal LM takes input_ids, not inputs") }
        let (batch, tokens) = (ids.count, ids.first?.count ?? 0)
        let out = try forward(ids, threads: threads)
        var result: [OutputKey: HostTensor] = [.logits: HostTensor(shape: [batch, tokens, config.vocabSize], values: out.logits)]
        for (n, state) in out.hiddenStates.enumerated() {
            result[.hiddenStates(n)] = HostTensor(shape: [batch, tokens, config.hiddenSize], values: state)
        }
        for (layer, logits) in out.routerLogits {
            result[.layerRouterLogits(layer)] = HostTensor(shape: [batch * tokens, config.numExperts], values: logits)
        }
        if auxLosses {
            let all = out.routerLogits.map(\.logits)
            result[.auxLoss] = .scalar(AuxiliaryLoss.loadBalancing(all, experts: config.numExperts, k: config.expertsPerToken))
            result[.routerZLoss] = .scalar(AuxiliaryLoss.routerZ(all, experts: config.numExperts))
        }
        return result
    }
}
