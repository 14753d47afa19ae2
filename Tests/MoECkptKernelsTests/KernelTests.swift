import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkptKernels

/// Each kernel against a plain scalar reference.
struct KernelTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &g) }
    }

    /// y[t, n] = b[n] + sum_k x[t, k] w[n, k], accumulated in Double.
    static func referenceLinear(_ x: [Float], _ w: [Float], _ b: [Float]?, rows: Int, inputs: Int, outputs: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        for t in 0..<rows {
            for n in 0..<outputs {
                var sum = Double(b?[n] ?? 0)
                for k in 0..<inputs { sum += Double(x[t * inputs + k]) * Double(w[n * inputs + k]) }
                y[t * outputs + n] = Float(sum)
            }
        }
        return y
    }

    static func linear(_ x: [Float], _ w: [Float], _ b: [Float]?, rows: Int, inputs: Int, outputs: Int, threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: rows * outputs)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    if let b {
                        b.withUnsafeBufferPointer { bp in
                            Linear.forward(
                                x: xp.baseAddress!, rows: rows, inputs: inputs, weight: wp.baseAddress!, outputs: outputs,
                                bias: bp.baseAddress!, into: yp.baseAddress!, threads: threads)
                        }
                    } else {
                        Linear.forward(
                            x: xp.baseAddress!, rows: rows, inputs: inputs, weight: wp.baseAddress!, outputs: outputs,
                            bias: nil, into: yp.baseAddress!, threads: threads)
                    }
                }
            }
        }
        return y
    }

    /// Sizes around the tile (4) and vector (16) widths, and a token count above the 64-token block.
    @Test(arguments: [(1, 1, 1), (3, 5, 7), (4, 16, 4), (5, 17, 9), (7, 33, 13), (70, 40, 6), (2, 100, 3)])
    func linearMatchesTheScalarReference(shape: (rows: Int, inputs: Int, outputs: Int)) {
        let (rows, inputs, outputs) = shape
        let x = Self.random(rows * inputs, seed: 1), w = Self.random(outputs * inputs, seed: 2), b = Self.random(outputs, seed: 3)
        for bias in [nil, b] {
            let expected = Self.referenceLinear(x, w, bias, rows: rows, inputs: inputs, outputs: outputs)
            let actual = Self.linear(x, w, bias, rows: rows, inputs: inputs, outputs: outputs, threads: 1)
            for i in 0..<expected.count {
                #expect(abs(actual[i] - expected[i]) <= 1e-5 * max(1, abs(expected[i])), "element \(i)")
            }
        }
    }

    @Test func linearIsBitIdenticalForAnyThreadCount() {
        let (rows, inputs, outputs) = (37, 70, 45)
        let x = Self.random(rows * inputs, seed: 4), w = Self.random(outputs * inputs, seed: 5)
        let one = Self.linear(x, w, nil, rows: rows, inputs: inputs, outputs: outputs, threads: 1)
        for threads in [2, 3, 8] {
            #expect(Self.linear(x, w, nil, rows: rows, inputs: inputs, outputs: outputs, threads: threads) == one)
        }
    }

    @Test func softmaxRowsSumToOneAndMatchTheDefinition() {
        var x = Self.random(3 * 7, seed: 6).map { $0 * 20 }
        x[3] = -.infinity
        let original = x
        x.withUnsafeMutableBufferPointer { Softmax.rows($0.baseAddress!, rows: 3, columns: 7) }
        for r in 0..<3 {
            let row = original[(r * 7)..<((r + 1) * 7)].map(Double.init)
            let maximum = row.max()!
            let total = row.reduce(0) { $0 + exp($1 - maximum) }
            for c in 0..<7 { #expect(abs(Double(x[r * 7 + c]) - exp(row[c] - maximum) / total) < 1e-6) }
        }
        #expect(x[3] == 0)
    }

    @Test func rmsAndLayerNormMatchTheirDefinitions() {
        let (rows, columns) = (3, 10)
        let x = Self.random(rows * columns, seed: 7), w = Self.random(columns, seed: 8), b = Self.random(columns, seed: 9)
        var rms = [Float](repeating: 0, count: x.count), layer = rms
        Norm.rms(x, rows: rows, columns: columns, weight: w, eps: 1e-5, into: &rms)
        Norm.layer(x, rows: rows, columns: columns, weight: w, bias: b, eps: 1e-5, into: &layer)
        for r in 0..<rows {
            let row = x[(r * columns)..<((r + 1) * columns)].map(Double.init)
            let meanSquare = row.reduce(0) { $0 + $1 * $1 } / Double(columns)
            let mean = row.reduce(0, +) / Double(columns)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(columns)
            for c in 0..<columns {
                #expect(abs(Double(rms[r * columns + c]) - row[c] / (meanSquare + 1e-5).squareRoot() * Double(w[c])) < 1e-5)
                #expect(
                    abs(Double(layer[r * columns + c]) - ((row[c] - mean) / (variance + 1e-5).squareRoot() * Double(w[c]) + Double(b[c])))
                        < 1e-5)
            }
        }
    }

    @Test func rotaryRotatesPairsByPositionTimesFrequency() {
        let (d, theta) = (8, 10000.0)
        let rotary = Rotary(headDim: d, theta: theta, positions: 5)
        var x = Self.random(d, seed: 10)
        let original = x
        x.withUnsafeMutableBufferPointer { rotary.apply($0.baseAddress!, position: 3) }
        for i in 0..<(d / 2) {
            let angle = 3 * pow(theta, -Double(2 * i) / Double(d))
            let (a, b) = (Double(original[i]), Double(original[i + d / 2]))
            #expect(abs(Double(x[i]) - (a * cos(angle) - b * sin(angle))) < 1e-5)
            #expect(abs(Double(x[i + d / 2]) - (b * cos(angle) + a * sin(angle))) < 1e-5)
        }
    }

    /// Every variant this CPU runs (the same operations, so the same bits as the selected one).
    @Test func vectorExpIsWithinTwoUlpOfTheDefinition() {
        for variant in KernelVariant.allCases where variant.isSupported {
            var worst = 0.0
            var x: Float = -87
            while x < 87.9 {
                let lanes = Activation.Vector((0..<16).map { x + Float($0) * 0.0037 })
                let result = Activation.exp(lanes, variant: variant)
                #expect(result == Activation.exp(lanes), "\(variant)")
                for lane in 0..<16 {
                    let exact = Foundation.exp(Double(lanes[lane]))
                    worst = max(worst, abs(Double(result[lane]) - exact) / (exact * Double(Float.ulpOfOne)))
                }
                x += 0.0595
            }
            #expect(worst <= 2, "\(variant): worst error \(worst) ulp")
            let tails = Activation.exp(
                Activation.Vector([-.infinity, -88, -1000, 88, 0, .nan, .infinity] + [Float](repeating: 1, count: 9)), variant: variant)
            #expect(tails[0] == 0 && tails[1] == 0 && tails[2] == 0 && tails[3] > 1e38 && tails[4] == 1, "\(variant)")
            #expect(tails[5].isNaN && tails[6] > 1e38, "\(variant)")
        }
    }

    @Test func siluMultiplyMatchesTheDefinitionOnVectorsAndTails() {
        let count = 16 * 40 + 7
        var gate = Self.random(count, seed: 11).map { $0 * 40 }
        let up = Self.random(count, seed: 12)
        let original = gate
        gate.withUnsafeMutableBufferPointer { Activation.siluMultiply($0.baseAddress!, up, count: count) }
        for i in 0..<count {
            let g = Double(original[i])
            let expected = g / (1 + Foundation.exp(-g)) * Double(up[i])
            #expect(abs(Double(gate[i]) - expected) <= 4e-7 * max(abs(expected), 1e-3), "element \(i)")
        }
    }

    @Test func siluMultiplyAndRelu() {
        var gate: [Float] = [-2, 0, 1.5, 30], up: [Float] = [1, 2, 3, 4]
        gate.withUnsafeMutableBufferPointer { Activation.siluMultiply($0.baseAddress!, up, count: 4) }
        for (i, g) in [-2.0, 0, 1.5, 30].enumerated() {
            #expect(abs(Double(gate[i]) - g / (1 + exp(-g)) * Double(up[i])) < 1e-5)
        }
        var x: [Float] = [-1, 0, 2, .nan]
        x.withUnsafeMutableBufferPointer { Activation.relu($0.baseAddress!, count: 4) }
        #expect(x[0] == 0 && x[1] == 0 && x[2] == 2 && x[3].isNaN)
    }
}
