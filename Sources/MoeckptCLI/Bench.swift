import ArgumentParser
import Foundation
import MoECkpt

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Time the MoE block and the full forward pass (synthetic weights of a given shape, or a Mixtral checkpoint's), kernels, or reading a checkpoint.",
        discussion: """
            Prints the median, fastest and slowest of the repetitions after warm-up, tokens/s and GFLOP/s.

            Examples:
              moeckpt bench --what forward --tokens 512
              moeckpt bench model-dir --what both --tokens 1
              moeckpt bench --what moe --dtype q4_k --tokens 1
              moeckpt bench --read model-dir --checksum
            """)

    @Argument(
        help: "A Mixtral checkpoint to time (its shape and weights); without it, synthetic weights of the shape below.",
        completion: .file())
    var checkpoint: String?
    @Option(
        help:
            "Synthetic weights' dtype: f32, bf16, f16, mxfp4, q8_0, q4_0, q4_k, q5_k, q6_k, fp8 (E4M3 with 128 x 128 block scales), mlx-affine2, mlx-affine4 or mlx-affine8 (mlx-lm's codes, groups of 64), mlx-mxfp4 (mlx-lm's E2M1 codes, an E8M0 scale per 32) (read in place by the kernels; the block types need sizes that are multiples of their blocks, 32 or 256)."
    )
    var dtype: MatrixWeightType = .f32
    @Option(
        help: "A file (safetensors, HDF5 or .moeckpt) whose hidden_states [tokens, hidden] feed the MoE block (default: seeded random).")
    var inputs: String?
    @Option(help: "Hidden size.") var hidden = 1024
    @Option(help: "Expert intermediate size.") var intermediate = 3584
    @Option(help: "Experts per layer.") var experts = 8
    @Option(help: "Experts per token.") var topK = 2
    @Option(help: "Decoder layers (full forward).") var layers = 4
    @Option(help: "Attention heads.") var heads = 8
    @Option(help: "Key/value heads.") var kvHeads = 2
    @Option(help: "Vocabulary size (full forward).") var vocab = 32000
    @Option(help: "Tokens in the batch.") var tokens = 512
    @OptionGroup var threads: ThreadOptions
    @OptionGroup var arithmetic: ArithmeticOption
    @Option(name: .customLong("repeat"), help: "Timed repetitions.") var repetitions = 5
    @Option(help: "Untimed warm-up runs.") var warmup = 1
    @Option(
        help:
            "What to time: moe, forward, both; linear (one expert projection, hidden to intermediate); cast (BF16 to F32 of --tokens million elements, against memcpy); bandwidth (memory read, 1 GiB, --threads)."
    )
    var what: BenchTarget = .both
    @Option(help: "Instead, time reading every tensor of this checkpoint (GB/s).") var read: String?
    @Flag(help: "With --read: time the CRC-32C of every tensor instead of a plain read.") var checksum = false
    @OptionGroup var output: JSONOption

    func validate() throws {
        for (name, value) in [
            ("hidden", hidden), ("intermediate", intermediate), ("experts", experts), ("top-k", topK),
            ("layers", layers), ("heads", heads), ("kv-heads", kvHeads), ("vocab", vocab),
            ("tokens", tokens), ("repeat", repetitions),
        ] where value < 1 {
            throw ValidationError("--\(name) must be at least 1")
        }
        guard topK <= experts else { throw ValidationError("--top-k must not exceed --experts") }
        guard hidden % heads == 0, heads % kvHeads == 0, (hidden / heads) % 2 == 0 else {
            throw ValidationError("--hidden must split into --heads of even size, and --heads into --kv-heads")
        }
        // Synthetic MLX codes are quantized in mlx-lm's default groups of 64.
        let block = [.mlx2, .mlx4, .mlx8].contains(dtype) ? 64 : dtype == .mlxE2M1 ? 32 : dtype.blockSize
        if hidden % block != 0 || intermediate % block != 0 {
            throw ValidationError("--dtype \(dtype) needs --hidden and --intermediate that are multiples of \(block) (its blocks)")
        }
    }

    func run() throws {
        keepActivationBuffersWarm()
        if let read {
            let result = try Bench.read(read, repetitions: repetitions, checksum: checksum)
            if output.json {
                try printJSON(result)
            } else {
                print(
                    String(
                        format: "%@ %@: %.1f MB in %.1f ms (median of %d; min %.1f, max %.1f): %.1f GB/s",
                        result.name, read, Double(result.tokens) / 1e6, result.median * 1e3, result.repetitions,
                        result.minimum * 1e3, result.maximum * 1e3, result.gflops))
            }
            return
        }
        let config = MixtralConfig(
            // The MoE block alone is layer 0's: synthetic weights for more layers would only take memory.
            vocabSize: vocab, hiddenSize: hidden, intermediateSize: intermediate, numLayers: what == .moe ? 1 : layers,
            numHeads: heads, numKVHeads: kvHeads, headDim: hidden / heads, numExperts: experts,
            expertsPerToken: topK, rmsNormEps: 1e-5, ropeTheta: 1e6, slidingWindow: nil,
            tieWordEmbeddings: false, maxPositionEmbeddings: max(tokens, 4096), hiddenAct: "silu"
        ).decoder
        func checkMemory(_ shape: DecoderConfig, synthetic: Bool) throws {
            let needed = Bench.memoryNeeded(
                shape, tokens: tokens, what: what, syntheticWeights: synthetic,
                weightBytes: max(1, dtype.bytes(1024) / 1024))
            guard let needed, MemoryBudget.fits(needed) else {
                throw ValidationError(
                    "this benchmark would need more memory than this process may use; use fewer --tokens or a smaller shape")
            }
        }
        try checkMemory(config, synthetic: checkpoint == nil)
        let results: [BenchResult]
        var shape = config
        let threads = self.threads.threads
        switch what {
        case .bandwidth:
            results = [Bench.readBandwidth(bytes: 1 << 30, threads: threads, repetitions: repetitions, warmup: warmup)]
        case .cast:
            results = Bench.cast(count: tokens << 20, repetitions: repetitions, warmup: warmup)
        case .linear:
            results = [
                Bench.linear(
                    hidden: hidden, intermediate: intermediate, tokens: tokens, threads: threads,
                    repetitions: repetitions, warmup: warmup)
            ]
        case .moe, .forward, .both:
            let model = try Bench.model(checkpoint: checkpoint, synthetic: config, weights: dtype)
            shape = model.config
            if checkpoint != nil { try checkMemory(shape, synthetic: false) }
            let x = try Bench.moeInput(inputs, tokens: tokens, hidden: shape.hiddenSize)
            results = Bench.run(
                model, tokens: tokens, threads: threads, repetitions: repetitions, warmup: warmup,
                parts: what.modelParts, moeInput: x, arithmetic: arithmetic.arithmetic)
        }
        if output.json {
            try printJSON(results)
            return
        }
        if what == .cast || what == .bandwidth {
            for r in results {
                print(
                    String(
                        format: "%-14@ median %8.2f ms (min %.2f, max %.2f)  %6.1f GB/s",
                        r.name, r.median * 1e3, r.minimum * 1e3, r.maximum * 1e3, r.gflops))
            }
            return
        }
        print(
            "\(checkpoint ?? "synthetic \(dtype.rawValue.lowercased()) weights"): hidden \(shape.hiddenSize), intermediate \(shape.expertIntermediate), "
                + "\(shape.numExperts) experts, top-\(shape.expertsPerToken); \(tokens) tokens, \(threads) threads, "
                + "\(KernelVariant.selected.rawValue) kernels")
        for r in results {
            print(
                String(
                    format: "%-10@ median %8.2f ms (min %.2f, max %.2f)  %10.1f tokens/s  %7.1f GFLOP/s  peak RSS %.0f MB, anon %.0f MB",
                    r.name, r.median * 1e3, r.minimum * 1e3, r.maximum * 1e3, r.tokensPerSecond, r.gflops,
                    Double(r.peakResident) / 1e6, Double(r.peakAnonymous) / 1e6))
        }
    }
}
