import Foundation

/// Vectorised element-wise kernels (8 lanes: one AVX register) for the passes that call `exp`:
/// softmax rows (attention, cross-entropy) and SwiGLU. libm's `expf` costs ~7 ns per call here;
/// the polynomial below ~1 ns per element, and these passes run ~10^8 times per training step of
/// the `small` config. Each kernel has a scalar reference (`*Reference`) that tests compare with.
public enum VectorMath {
    public typealias V8 = SIMD8<Float>

    /// e^x per lane: Cephes' `expf` (range reduction by ln 2 split in two constants, degree-5
    /// polynomial, exponent built in the bits). Relative error < 2e-7 on [-87.3, 88.3]; inputs are
    /// clamped to that range (so e^-1000 gives ~1e-38 instead of 0, harmless in softmax/sigmoid).
    @inline(__always)
    public static func exp(_ x0: V8) -> V8 {
        let lo = V8(repeating: -87.33654), hi = V8(repeating: 88.37626)
        var x = x0.replacing(with: lo, where: x0 .< lo)
        x = x.replacing(with: hi, where: x .> hi)
        let fx = (x * 1.44269504088896341 + 0.5).rounded(.down)  // n = round(x / ln 2)
        x = x - fx * 0.693359375 + fx * 2.12194440e-4  // x - n ln 2, in two parts
        let z = x * x
        var y = V8(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // 2^n: n (|n| <= 127) as an integer via the 1.5 * 2^23 trick (no float->int conversion
        // call), then placed in the exponent field.
        let n = unsafeBitCast(fx + 12_582_912, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return y * unsafeBitCast((n &+ 127) &<< 23, to: V8.self)
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }
    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

    /// Largest of `x[0..<n]` (n >= 1).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = V8(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { let v = load(x + i); m = m.replacing(with: v, where: v .> m); i += 8 }
        var r = m.max()
        while i < n { r = Swift.max(r, x[i]); i += 1 }
        return r
    }

    /// `sum_i exp(x[i] - shift)`; when `out` is given also writes each term there (may be `x`).
    @inline(__always)
    public static func expSum(_ x: UnsafePointer<Float>, _ n: Int, shift: Float, out: UnsafeMutablePointer<Float>?) -> Float {
        let s = V8(repeating: shift)
        var acc = V8()
        var i = 0
        while i + 8 <= n {
            let e = exp(load(x + i) - s)
            if let out { store(e, out + i) }
            acc += e
            i += 8
        }
        var tail = V8(repeating: -.infinity)  // the last < 8 elements through the same polynomial
        for j in 0..<(n - i) { tail[j] = x[i + j] - shift }
        let e = exp(tail).replacing(with: 0, where: tail .== -.infinity)
        if let out { for j in 0..<(n - i) { out[i + j] = e[j] } }
        return (acc + e).sum()
    }

    /// `x[i] *= a`.
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ n: Int, by a: Float) {
        let av = V8(repeating: a)
        var i = 0
        while i + 8 <= n { store(load(x + i) * av, x + i); i += 8 }
        while i < n { x[i] *= a; i += 1 }
    }

    /// In-place softmax of one row.
    @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let m = max(x, n)
        let s = expSum(x, n, shift: m, out: x)
        scale(x, n, by: 1 / s)
    }

    /// `log sum_i exp(x[i])`, computed stably (shifted by the maximum).
    @inline(__always)
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = max(x, n)
        return logf(expSum(x, n, shift: m, out: nil)) + m
    }

    /// `h = g * sigmoid(g) * u` over `[lo, hi)`.
    @inline(__always)
    public static func swiglu(_ g: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        var i = r.lowerBound
        let one = V8(repeating: 1)
        while i + 8 <= r.upperBound {
            let gv = load(g + i)
            store(gv / (one + exp(-gv)) * load(u + i), h + i)
            i += 8
        }
        while i < r.upperBound { h[i] = g[i] / (1 + expScalar(-g[i])) * u[i]; i += 1 }
    }

    /// Backward of `swiglu`: `dg = dh * u * s * (1 + g (1 - s))` over g, `du = dh * g * s` over u.
    @inline(__always)
    public static func swigluBackward(
        _ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ dh: UnsafePointer<Float>,
        _ r: Range<Int>
    ) {
        var i = r.lowerBound
        let one = V8(repeating: 1)
        while i + 8 <= r.upperBound {
            let gv = load(g + i), uv = load(u + i), d = load(dh + i)
            let s = one / (one + exp(-gv))
            store(d * uv * s * (one + gv * (one - s)), g + i)
            store(d * gv * s, u + i)
            i += 8
        }
        while i < r.upperBound {
            let gi = g[i], s = 1 / (1 + expScalar(-gi)), d = dh[i]
            g[i] = d * u[i] * s * (1 + gi * (1 - s))
            u[i] = d * gi * s
            i += 1
        }
    }

    /// The same polynomial for one value (tails), so a result does not depend on its position.
    @inline(__always)
    public static func expScalar(_ x: Float) -> Float { exp(V8(repeating: x))[0] }
}

/// The `k` largest entries of `row`, best first; equal values keep the lower index first.
func topK(_ row: UnsafePointer<Float>, _ V: Int, _ k: Int) -> [(value: Float, index: Int32)] {
    var top: [(value: Float, index: Int32)] = []
    top.reserveCapacity(k + 1)
    for j in 0..<V where top.count < k || row[j] > top[top.count - 1].value {
        var at = top.count
        while at > 0 && top[at - 1].value < row[j] { at -= 1 }
        top.insert((row[j], Int32(j)), at: at)
        if top.count > k { top.removeLast() }
    }
    return top
}

/// out = a + b, element-wise.
@inline(__always)
func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forChunks(count, grain: 8192) { r in
        for i in r { out[i] = a[i] + b[i] }
    }
}
