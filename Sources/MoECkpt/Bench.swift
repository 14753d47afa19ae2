import Dispatch
import MoECkptForward
import Synchronization

/// Times the MoE block and the full forward pass of a Mixtral-shaped model with synthetic weights.
public struct BenchResult: Encodable, Sendable {
    public let name: String
    public let tokens: Int
    public let threads: Int
    public let repetitions: Int
    /// Seconds: median, fastest, slowest.
    public let median: Double
    public let minimum: Double
    public let maximum: Double
    public let tokensPerSecond: Double
    public let gflops: Double
    /// Bytes: the process's peak resident set so far (`VmHWM`, file pages of mapped weights
    /// included), and the most anonymous memory seen during the runs (sampled every 10 ms;
    /// `ProcessMemory.peakAnonymous`). 0 where /proc does not say.
    public let peakResident: Int
    public let peakAnonymous: Int

    enum CodingKeys: String, CodingKey {
        case name, tokens, threads, repetitions, median, minimum, maximum, tokensPerSecond, gflops
        case peakResident = "peak_rss"
        case peakAnonymous = "peak_anon"
    }
}

/// What `moeckpt bench` times.
public enum BenchTarget: String, CaseIterable, Sendable {
    /// The MoE block of the first layer.
    case moe
    /// The full forward pass.
    case forward
    case both
    /// One expert projection, hidden to intermediate.
    case linear
    /// The BF16 -> F32 cast kernel against memcpy.
    case cast
    /// Memory read bandwidth.
    case bandwidth

    /// The parts of a model it times (none for the kernel and memory benchmarks).
    public var modelParts: Set<BenchPart> {
        switch self {
        case .moe: [.moe]
        case .forward: [.forward]
        case .both: [.moe, .forward]
        case .linear, .cast, .bandwidth: []
        }
    }
}

/// A part of a model's forward pass that `Bench.run` times.
public enum BenchPart: Sendable, Hashable {
    case moe
    case forward
}

public enum Bench {
    /// Floating-point operations of one MoE block: router, and for each token its k experts
    /// (three matrix products of hidden x intermediate).
    public static func moeFLOPs(_ c: DecoderConfig, tokens: Int) -> Double {
        let t = Double(tokens)
        return 2 * t * Double(c.hiddenSize * c.numExperts)
            + 2 * t * Double(c.expertsPerToken) * 3 * Double(c.hiddenSize * c.expertIntermediate)
    }

    /// One forward pass: per layer the projections, the attention products (full T x T, as
    /// computed), the MoE block; then the LM head.
    public static func forwardFLOPs(_ c: DecoderConfig, tokens: Int) -> Double {
        let t = Double(tokens), h = Double(c.hiddenSize)
        let q = Double(c.numHeads * c.headDim), kv = Double(c.numKVHeads * c.headDim)
        let projections = 2 * t * h * (q + 2 * kv) + 2 * t * q * h
        let attention = 2 * 2 * t * t * Double(c.headDim) * Double(c.numHeads)
        return Double(c.numLayers) * (projections + attention + moeFLOPs(c, tokens: tokens)) + 2 * t * h * Double(c.vocabSize)
    }

    /// Seconds of each repetition after the warm-up runs, and the memory peaks of them all.
    struct Timing {
        var times: [Double] = []
        var peakResident = 0, peakAnonymous = 0

        /// `body` while the peak of anonymous memory is sampled, then the resident peak.
        init<E: Error>(_ body: (inout [Double]) throws(E) -> Void) throws(E) {
            var times: [Double] = []
            peakAnonymous = try ProcessMemory.peakAnonymous { () throws(E) in try body(&times) }
            self.times = times
            peakResident = ProcessMemory.peakResident() ?? 0
        }
    }

    static func time(repetitions: Int, warmup: Int, _ body: () -> Void) -> Timing {
        Timing { times in
            for _ in 0..<warmup { body() }
            times = (0..<repetitions).map { _ in
                let start = DispatchTime.now().uptimeNanoseconds
                body()
                return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
        }
    }

    static func result(_ name: String, _ timing: Timing, tokens: Int, threads: Int, flops: Double) -> BenchResult {
        let sorted = timing.times.sorted()
        let median = sorted[sorted.count / 2]
        return BenchResult(
            name: name, tokens: tokens, threads: threads, repetitions: sorted.count, median: median,
            minimum: sorted.first!, maximum: sorted.last!, tokensPerSecond: Double(tokens) / median,
            gflops: flops / median / 1e9, peakResident: timing.peakResident, peakAnonymous: timing.peakAnonymous)
    }

    /// Reads every byte of every tensor of a checkpoint (HDF5 chunked or compressed datasets are
    /// first read into their buffers; mapped data is read in place), after one warm-up pass that
    /// brings the file into the page cache; reports the median pass.
    public static func read(_ path: String, repetitions: Int, checksum: Bool = false) throws(FileError) -> BenchResult {
        let checksumming = checksum
        var total = 0
        let timing = try Timing { (times: inout [Double]) throws(FileError) in
            for pass in 0...repetitions {
                let checkpoint = try ModelDirectory.open(path)
                let start = DispatchTime.now().uptimeNanoseconds
                var checksum = SIMD8<UInt64>()
                total = 0
                for tensor in checkpoint.tensors {
                    let bytes = try tensor.load()
                    if checksumming {
                        checksum[0] ^= UInt64(CRC32C.checksum(bytes))
                    } else {
                        for i in 0..<(bytes.count / 64) { checksum ^= bytes.loadUnaligned(fromByteOffset: 64 * i, as: SIMD8<UInt64>.self) }
                    }
                    total += bytes.count
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if pass > 0 { times.append(seconds) }
                blackHole(checksum)
            }
        }
        let sorted = timing.times.sorted()
        let median = sorted[sorted.count / 2]
        return BenchResult(
            name: checksumming ? "crc32c" : "read", tokens: total, threads: 1, repetitions: sorted.count, median: median,
            minimum: sorted.first!, maximum: sorted.last!, tokensPerSecond: 0, gflops: Double(total) / median / 1e9,
            peakResident: timing.peakResident, peakAnonymous: timing.peakAnonymous)
    }

    /// The model a benchmark runs: a checkpoint of any decoder family's (Mixtral, Qwen-MoE,
    /// OLMoE, GraniteMoE), or synthetic weights of `config`'s shape in `weights` (F32 or BF16).
    public static func model(
        checkpoint: String?, synthetic config: DecoderConfig,
        weights: MatrixWeightType
    ) throws(FileError) -> DecoderForward {
        guard let checkpoint else { return DecoderForward(synthetic: config, weights: weights) }
        let loaded = try ModelLoader.load(checkpoint)
        guard let config = (loaded.architecture as? any DecoderArchitecture)?.decoder else {
            throw FileError(
                path: checkpoint,
                problem: ForwardError.badInput("bench runs decoder language models; this is a \(loaded.architecture.modelType) module"))
        }
        do { return try DecoderForward(loaded, config: config) } catch {
            throw FileError(path: checkpoint, problem: error)
        }
    }

    /// The MoE block's input: a file's `hidden_states` [tokens, hidden] (any float dtype), or
    /// seeded uniform values in [-1, 1).
    public static func moeInput(_ path: String?, tokens: Int, hidden: Int) throws(FileError) -> [Float] {
        guard let path else {
            var state: UInt64 = 7
            return (0..<(tokens * hidden)).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(state >> 40) / Float(1 << 24) * 2 - 1
            }
        }
        let file = try ModelDirectory.open(path)
        guard let tensor = file.tensors.first(where: { $0.name == "hidden_states" }), tensor.elementCount == tokens * hidden else {
            throw FileError(path: path, problem: ForwardError.badInput("expected a tensor hidden_states of \(tokens) x \(hidden) values"))
        }
        return try f32(tensor, in: path)
    }

    public static func run(
        _ model: DecoderForward, tokens: Int, threads: Int, repetitions: Int, warmup: Int,
        parts: Set<BenchPart>, moeInput x: [Float], arithmetic: Arithmetic = .exact
    ) -> [BenchResult] {
        Linear.$arithmetic.withValue(arithmetic) {
            run(model, tokens: tokens, threads: threads, repetitions: repetitions, warmup: warmup, parts: parts, moeInput: x)
        }
    }

    private static func run(
        _ model: DecoderForward, tokens: Int, threads: Int, repetitions: Int, warmup: Int,
        parts: Set<BenchPart>, moeInput x: [Float]
    ) -> [BenchResult] {
        let config = model.config
        var results: [BenchResult] = []
        if parts.contains(.moe) {
            let times = time(repetitions: repetitions, warmup: warmup) {
                _ = model.moeBlock(x, rows: tokens, threads: threads)
            }
            results.append(result("moe-block", times, tokens: tokens, threads: threads, flops: moeFLOPs(config, tokens: tokens)))
        }
        if parts.contains(.forward) {
            let ids = [(0..<tokens).map { ($0 * 7919) % config.vocabSize }]
            let times = time(repetitions: repetitions, warmup: warmup) {
                _ = try? model.forward(ids, threads: threads)
            }
            results.append(result("forward", times, tokens: tokens, threads: threads, flops: forwardFLOPs(config, tokens: tokens)))
        }
        return results
    }

    /// One linear layer hidden -> intermediate (an expert's gate projection) on `tokens` rows.
    public static func linear(
        hidden h: Int, intermediate i: Int, tokens: Int, threads: Int, repetitions: Int,
        warmup: Int
    ) -> BenchResult {
        let x = [Float](repeating: 0.5, count: tokens * h), w = [Float](repeating: 0.25, count: i * h)
        var y = [Float](repeating: 0, count: tokens * i)
        let times = time(repetitions: repetitions, warmup: warmup) {
            Linear.forward(x: x, rows: tokens, inputs: h, weight: w, outputs: i, bias: nil, into: &y, threads: threads)
        }
        return result("linear", times, tokens: tokens, threads: threads, flops: 2 * Double(tokens * h * i))
    }

    /// The BF16 -> F32 cast kernel of `convert --dtype f32` on `count` elements in memory,
    /// against a plain copy of the output's bytes (memcpy) in the same run: GB/s of output.
    public static func cast(count: Int, repetitions: Int, warmup: Int) -> [BenchResult] {
        let source = [UInt16](repeating: 0x3F80, count: count)
        var target = [Float](repeating: 0, count: count)
        let copySource = [Float](repeating: 1, count: count)
        let bytes = Double(count * 4)
        let castTimes = time(repetitions: repetitions, warmup: warmup) {
            source.withUnsafeBytes { s in
                target.withUnsafeMutableBytes { t in
                    try? Cast.cast(s.baseAddress!, from: .bf16, into: t.baseAddress!, as: .f32, count: count)
                }
            }
        }
        let copyTimes = time(repetitions: repetitions, warmup: warmup) {
            copySource.withUnsafeBytes { s in
                target.withUnsafeMutableBytes { t in t.baseAddress!.copyMemory(from: s.baseAddress!, byteCount: s.count) }
            }
        }
        return [
            result("cast-bf16-f32", castTimes, tokens: count, threads: 1, flops: bytes),
            result("memcpy", copyTimes, tokens: count, threads: 1, flops: bytes),
        ]
    }

    /// Memory read bandwidth: `threads` threads summing their parts of a buffer of `bytes` (filled
    /// first, so it is resident), four SIMD16 accumulators each; GB/s read.
    public static func readBandwidth(bytes: Int, threads: Int, repetitions: Int, warmup: Int) -> BenchResult {
        let count = bytes / 4 / 64 * 64
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        buffer.initialize(repeating: 1, count: count)
        let source = SendableConstPointer(UnsafePointer(buffer))
        let sink = Mutex(Float(0))
        let times = time(repetitions: repetitions, warmup: warmup) {
            Parallel.ranges(count / 64, threads: threads) { blocks in
                var (a, b, c, d) = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
                for block in blocks {
                    let p = UnsafeRawPointer(source.base + block * 64)
                    a += p.loadUnaligned(as: SIMD16<Float>.self)
                    b += p.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                    c += p.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self)
                    d += p.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self)
                }
                let total = (a + b + c + d).sum()
                sink.withLock { $0 += total }
            }
        }
        return result("read", times, tokens: 0, threads: threads, flops: Double(count * 4))
    }

    /// Bytes a benchmark would allocate, roughly (nil when that overflows): synthetic weights, the
    /// activations of `tokens` tokens (the logits and the per-head attention scores the largest),
    /// or the cast benchmark's three buffers. The shape comes from the command line: every step
    /// is checked.
    public static func memoryNeeded(
        _ c: DecoderConfig, tokens: Int, what: BenchTarget, syntheticWeights: Bool,
        weightBytes: Int
    ) -> Int? {
        func product(_ factors: Int?...) -> Int? {
            let known = factors.compactMap { $0 }
            return known.count == factors.count ? try? Shape.elementCount(known) : nil
        }
        func sum(_ terms: Int?...) -> Int? {
            terms.reduce(Optional(0)) { total, term in
                guard let total, let term else { return nil }
                let (value, overflow) = total.addingReportingOverflow(term)
                return overflow ? nil : value
            }
        }
        let (h, i) = (c.hiddenSize, c.expertIntermediate)
        switch what {
        case .cast: return product(tokens, 1 << 20, 10)
        case .bandwidth: return 1 << 30
        case .linear: return sum(product(tokens, sum(h, i, i), 4), product(h, i, 4))
        case .moe, .forward, .both:
            let perLayer = sum(product(2, c.numHeads, c.headDim, h), product(3, c.numExperts, h, i), product(c.numExperts, h))
            let weights = syntheticWeights ? sum(product(c.numLayers, perLayer, weightBytes), product(2, c.vocabSize, h, 4)) : 0
            let perToken = sum(c.vocabSize, product(8, max(h, i)), product(sum(c.numLayers, 2), h))
            return sum(weights, product(2, tokens, 4, perToken), product(tokens, tokens, 4, 4))
        }
    }
}

/// Keeps a value computed only to be timed from being optimised away.
@inline(never)
func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }
