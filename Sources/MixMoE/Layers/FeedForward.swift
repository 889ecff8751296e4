import Foundation

/// A block's feed-forward sub-layer: dense SwiGLU, or a Mix-MoE layer that replaces it.
public protocol FeedForward: AnyObject {
    /// Output buffer `[N, d]` of the last forward.
    var output: UnsafeMutablePointer<Float> { get }
    var anyTrainable: Bool { get }
    func reserve(tokens: Int)
    func forward(_ x: UnsafePointer<Float>, n: Int)
    /// Parameter gradients (for trainable views), and `dx += d(out)/dx` when `dx` is given.
    func backward(_ dout: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, n: Int)
}

/// Llama's SwiGLU FFN: `down( silu(gate(x)) * up(x) )`.
public final class SwiGLU: FeedForward, @unchecked Sendable {
    public let gate: Linear, up: Linear, down: Linear
    public let dim: Int, hidden: Int
    private var g = FloatBuffer(count: 0)  // [N, dff] gate pre-activation
    private var u = FloatBuffer(count: 0)  // [N, dff]
    private var h = FloatBuffer(count: 0)  // [N, dff] silu(g) * u
    private var out = FloatBuffer(count: 0)  // [N, d]
    private var dh = FloatBuffer(count: 0)  // [N, dff]

    public init(_ store: ParameterStore, prefix: String, dim: Int, hidden: Int, loraAlpha: Double = 16) {
        self.dim = dim; self.hidden = hidden
        gate = Linear(store, prefix + ".gate_proj", inF: dim, outF: hidden, bias: false, loraAlpha: loraAlpha)
        up = Linear(store, prefix + ".up_proj", inF: dim, outF: hidden, bias: false, loraAlpha: loraAlpha)
        down = Linear(store, prefix + ".down_proj", inF: hidden, outF: dim, bias: false, loraAlpha: loraAlpha)
    }

    public var output: UnsafeMutablePointer<Float> { out.ptr }
    public var anyTrainable: Bool { gate.anyTrainable || up.anyTrainable || down.anyTrainable }

    public func reserve(tokens n: Int) {
        guard g.count < n * hidden else { return }
        g = FloatBuffer(count: n * hidden); u = FloatBuffer(count: n * hidden); h = FloatBuffer(count: n * hidden)
        dh = FloatBuffer(count: n * hidden); out = FloatBuffer(count: n * dim)
    }

    public func forward(_ x: UnsafePointer<Float>, n: Int) {
        gate.forward(x, g.ptr, n: n)
        up.forward(x, u.ptr, n: n)
        Profile.measure("swiglu") { swigluForward(g.ptr, u.ptr, h.ptr, count: n * hidden) }
        down.forward(h.ptr, out.ptr, n: n)
    }

    public func backward(_ dout: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, n: Int) {
        down.backward(dout, inp: h.ptr, dinp: dh.ptr, accumulate: false, n: n)
        // h = silu(g) * u: overwrite g with dg and u with du (neither is needed afterwards)
        swigluBackward(g.ptr, u.ptr, dh.ptr, count: n * hidden)
        gate.backward(g.ptr, inp: x, dinp: dx, accumulate: true, n: n)
        up.backward(u.ptr, inp: x, dinp: dx, accumulate: true, n: n)
    }
}

/// h = silu(g) * u = g * sigmoid(g) * u
@inline(__always)
func swigluForward(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ h: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forChunks(count, grain: 4096) { r in
        VectorMath.swiglu(g, u, h, r)
    }
}

/// Differentiates `h = g * sigmoid(g) * u`: `dg = dh * u * s * (1 + g (1 - s))`, `du = dh * g * s`.
/// Writes dg over g and du over u.
@inline(__always)
func swigluBackward(_ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ dh: UnsafePointer<Float>, count: Int) {
    Parallel.forChunks(count, grain: 4096) { r in
        VectorMath.swigluBackward(g, u, dh, r)
    }
}
