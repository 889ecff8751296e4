import Foundation
import Testing

@testable import MixMoE

/// Each layer's backward against central finite differences of the scalar `L = sum(out * R)`
/// (R fixed random), perturbing inputs and every parameter.
struct FiniteDifferenceTests {
    /// Central differences of `loss` w.r.t. every entry of `values` against `analytic`;
    /// relative L2 error must stay under `tol` (fp32 forward, h = 1e-2).
    func check(
        _ what: String, _ values: UnsafeMutablePointer<Float>, count: Int, analytic: [Float],
        h: Float = 1e-2, tol: Double = 1e-2, loss: () -> Double,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var numeric = [Float](repeating: 0, count: count)
        for i in 0..<count {
            let v = values[i]
            values[i] = v + h; let lp = loss()
            values[i] = v - h; let lm = loss()
            values[i] = v
            numeric[i] = Float((lp - lm) / Double(2 * h))
        }
        let err = relativeError(analytic, numeric)
        #expect(err < tol, "\(what): relative error \(err)", sourceLocation: sourceLocation)
    }

    func dot(_ p: UnsafePointer<Float>, _ r: [Float]) -> Double {
        var s = 0.0
        for i in r.indices { s += Double(p[i]) * Double(r[i]) }
        return s
    }

    func grad(_ s: ParameterStore, _ name: String) -> [Float] {
        let id = s.id(name)!
        return Array(UnsafeBufferPointer(start: s.g(id), count: s.entries[id].count))
    }

    func randomStore(_ layout: [(String, [Int])], seed: UInt64) -> ParameterStore {
        let s = ParameterStore()
        for (n, sh) in layout { s.add(n, sh) }
        s.finalize()
        let r = randomFloats(s.count, seed: seed, scale: 0.5)
        for i in 0..<s.count { s.params.ptr[i] = r[i] }
        return s
    }

    @Test func linear() {
        let n = 3, inF = 5, outF = 4
        let s = randomStore([("l.weight", [outF, inF]), ("l.bias", [outF])], seed: 1)
        let lin = Linear(s, "l", inF: inF, outF: outF, bias: true)
        let x = FloatBuffer(randomFloats(n * inF, seed: 2)), out = FloatBuffer(count: n * outF)
        let R = randomFloats(n * outF, seed: 3), dx = FloatBuffer(count: n * inF)
        let loss = {
            lin.forward(x.ptr, out.ptr, n: n); return self.dot(out.ptr, R)
        }
        lin.backward(R, inp: x.ptr, dinp: dx.ptr, accumulate: false, n: n)
        check("linear dx", x.ptr, count: n * inF, analytic: dx.array, loss: loss)
        check("linear dW", s.w(0), count: outF * inF, analytic: grad(s, "l.weight"), loss: loss)
        check("linear db", s.w(1), count: outF, analytic: grad(s, "l.bias"), loss: loss)
    }

    @Test func rmsnorm() {
        let n = 3, d = 6
        let s = randomStore([("n.weight", [d])], seed: 4)
        let norm = RMSNorm(s, "n.weight", dim: d, eps: 1e-5)
        norm.reserve(tokens: n)
        let x = FloatBuffer(randomFloats(n * d, seed: 5)), R = randomFloats(n * d, seed: 6)
        let dx = FloatBuffer(count: n * d)
        let loss = {
            norm.forward(x.ptr, n: n); return self.dot(norm.out.ptr, R)
        }
        _ = loss()
        norm.backward(R, inp: x.ptr, dinp: dx.ptr, n: n)
        check("rmsnorm dx", x.ptr, count: n * d, analytic: dx.array, loss: loss)
        check("rmsnorm dw", s.w(0), count: d, analytic: grad(s, "n.weight"), loss: loss)
    }

    @Test func swiglu() {
        let n = 3, d = 4, f = 6
        let s = randomStore(
            DecoderModel.denseFFNLayout(
                ModelConfig(vocabSize: 1, hiddenSize: d, intermediateSize: f, numHiddenLayers: 1, numAttentionHeads: 1), layer: 0),
            seed: 7)
        let ffn = SwiGLU(s, prefix: "model.layers.0.mlp", dim: d, hidden: f)
        ffn.reserve(tokens: n)
        let x = FloatBuffer(randomFloats(n * d, seed: 8)), R = randomFloats(n * d, seed: 9)
        let dx = FloatBuffer(count: n * d)
        let loss = {
            ffn.forward(x.ptr, n: n); return self.dot(ffn.output, R)
        }
        _ = loss()
        ffn.backward(R, x: x.ptr, dx: dx.ptr, n: n)
        check("swiglu dx", x.ptr, count: n * d, analytic: dx.array, loss: loss)
        for e in s.entries {
            check("swiglu d\(e.name)", s.w(s.id(e.name)!), count: e.count, analytic: grad(s, e.name), loss: loss)
        }
    }

    @Test(arguments: [false, true])
    func attention(qkvBias: Bool) {
        let b = 2, T = 4, d = 8
        var c = ModelConfig(
            modelType: qkvBias ? "qwen2" : "llama", vocabSize: 1, hiddenSize: d, intermediateSize: 4,
            numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, headDim: 4)
        c.ropeTheta = 100
        let layout = DecoderModel.denseLayout(c).filter { $0.0.contains("self_attn") }
        let s = randomStore(layout, seed: 10)
        let rot = Rotary(config: c)
        rot.reserve(positions: T)
        let attn = Attention(s, prefix: "model.layers.0.self_attn", config: c, rotary: rot)
        attn.reserve(batch: b, seq: T)
        let pos = IntBuffer(count: b * T)
        for i in 0..<(b * T) { pos.ptr[i] = Int32(i % T) }
        let x = FloatBuffer(randomFloats(b * T * d, seed: 11)), R = randomFloats(b * T * d, seed: 12)
        let dx = FloatBuffer(count: b * T * d)
        let loss = {
            attn.forward(x.ptr, positions: pos.ptr, batch: b, seq: T)
            return self.dot(attn.out.ptr, R)
        }
        _ = loss()
        attn.backward(R, inp: x.ptr, dinp: dx.ptr, positions: pos.ptr, batch: b, seq: T)
        check("attention dx", x.ptr, count: b * T * d, analytic: dx.array, loss: loss)
        for e in s.entries {
            check("attention d\(e.name)", s.w(s.id(e.name)!), count: e.count, analytic: grad(s, e.name), loss: loss)
        }
    }

    @Test func rotaryIsDifferentiatedByItsTranspose() {
        let c = ModelConfig(
            vocabSize: 1, hiddenSize: 8, intermediateSize: 4, numHiddenLayers: 1,
            numAttentionHeads: 2,
            ropeScaling: RopeScaling(
                ropeType: "llama3", factor: 4,
                lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8))
        let rot = Rotary(config: c)
        rot.reserve(positions: 5)
        let n = 5, heads = 2
        let pos = IntBuffer(count: n)
        for i in 0..<n { pos.ptr[i] = Int32(i) }
        let x = FloatBuffer(randomFloats(n * 8, seed: 13)), R = randomFloats(n * 8, seed: 14)
        let y = FloatBuffer(count: n * 8)
        let loss = {
            y.ptr.update(from: x.ptr, count: n * 8)
            rot.forward(y.ptr, positions: pos.ptr, n: n, heads: heads)
            return self.dot(y.ptr, R)
        }
        let dx = FloatBuffer(R)
        rot.backward(dx.ptr, positions: pos.ptr, n: n, heads: heads)
        check("rotary dx", x.ptr, count: n * 8, analytic: dx.array, loss: loss)
    }

    @Test func embedding() {
        let V = 5, d = 3, n = 4
        let table = FloatBuffer(randomFloats(V * d, seed: 15)), dtable = FloatBuffer(count: V * d)
        let ids = IntBuffer(count: n)
        for (i, t) in [1, 3, 1, 4].enumerated() { ids.ptr[i] = Int32(t) }
        let out = FloatBuffer(count: n * d), R = randomFloats(n * d, seed: 16)
        let loss = {
            Embedding.forward(.f32(UnsafePointer(table.ptr)), ids: ids.ptr, out: out.ptr, n: n, dim: d); return self.dot(out.ptr, R)
        }
        Embedding.backward(dtable.ptr, ids: ids.ptr, dout: R, n: n, dim: d)
        check("embedding dE", table.ptr, count: V * d, analytic: dtable.array, loss: loss)
    }

    @Test func crossEntropyWithIgnoredRow() {
        let n = 3, V = 5
        let logits = FloatBuffer(randomFloats(n * V, seed: 17)), losses = FloatBuffer(count: n)
        let t = IntBuffer(count: n)
        t.ptr[0] = 2; t.ptr[1] = -1; t.ptr[2] = 4
        let loss = { CrossEntropy.forward(logits.ptr, targets: t.ptr, losses: losses.ptr, n: n, vocab: V).sum * 0.5 }
        let g = FloatBuffer(logits.array)
        CrossEntropy.backward(g.ptr, targets: t.ptr, n: n, vocab: V, scale: 0.5)
        check("cross-entropy dlogits", logits.ptr, count: n * V, analytic: g.array, h: 1e-2, loss: loss)
        #expect((V..<(2 * V)).allSatisfy { g[$0] == 0 }, "ignored row must get no gradient")
    }
}
