import Foundation
import Testing

@testable import MixMoE

/// The vectorised kernels against double-precision references (Foundation's `exp`).
struct VectorMathTests {
    @Test func expMatchesDoublePrecision() {
        var worst = 0.0
        for i in 0..<200_000 {
            let x = -87 + 175 * Float(i) / 200_000
            let got = Double(VectorMath.exp(SIMD8(repeating: x))[0]), want = Foundation.exp(Double(x))
            worst = max(worst, abs(got - want) / want)
        }
        #expect(worst < 3e-7, "max relative error \(worst)")
        // below the clamp the result is tiny and positive, above it finite
        #expect(VectorMath.exp(SIMD8(repeating: -1000))[0] < 1e-37)
        #expect(VectorMath.exp(SIMD8(repeating: 1000))[0].isFinite)
    }

    /// Softmax, cross-entropy pieces and SwiGLU for lengths around the 8-lane boundary.
    @Test(arguments: [1, 7, 8, 9, 31, 1000])
    func kernelsMatchReferences(_ n: Int) {
        let x = randomFloats(n, seed: UInt64(n)).map { $0 * 20 }
        let ref = x.map(Double.init), m = ref.max()!
        #expect(VectorMath.max(x, n) == x.max()!)
        let sum = ref.map { Foundation.exp($0 - m) }.reduce(0, +)
        let buf = FloatBuffer(x)
        #expect(abs(Double(VectorMath.expSum(buf.ptr, n, shift: Float(m), out: nil)) - sum) <= 1e-6 * sum)
        VectorMath.softmax(buf.ptr, n)
        expectClose(buf.array, ref.map { Float(Foundation.exp($0 - m) / sum) }, atol: 1e-6, "softmax n=\(n)")

        let g = randomFloats(n, seed: 10 + UInt64(n)).map { $0 * 8 }, u = randomFloats(n, seed: 20), dh = randomFloats(n, seed: 30)
        func sig(_ v: Float) -> Double { 1 / (1 + Foundation.exp(-Double(v))) }
        let h = FloatBuffer(count: n)
        VectorMath.swiglu(g, u, h.ptr, 0..<n)
        expectClose(h.array, (0..<n).map { Float(Double(g[$0]) * sig(g[$0]) * Double(u[$0])) }, atol: 1e-5, "swiglu n=\(n)")
        let gb = FloatBuffer(g), ub = FloatBuffer(u)
        VectorMath.swigluBackward(gb.ptr, ub.ptr, dh, 0..<n)
        let dg = (0..<n).map { i -> Float in
            let s = sig(g[i]); return Float(Double(dh[i]) * Double(u[i]) * s * (1 + Double(g[i]) * (1 - s)))
        }
        expectClose(gb.array, dg, atol: 1e-5, "swiglu dg n=\(n)")
        expectClose(ub.array, (0..<n).map { Float(Double(dh[$0]) * Double(g[$0]) * sig(g[$0])) }, atol: 1e-5, "swiglu du n=\(n)")
    }
}

/// The worker pool behind `Parallel`: every chunk of every region runs exactly once, on whichever
/// thread, and the region returns only when all have run (counted against the closed form).
struct WorkerPoolTests {
    @Test(arguments: [1, 3])
    func everyChunkRunsOnceInEveryRegion(workers: Int) {
        let pool = WorkerPool(workers: workers)
        let counts = IntBuffer(count: 64)
        var expected = [Int32](repeating: 0, count: 64)
        for region in 0..<5000 {
            let n = 1 + (region * 7919) % 64  // 1...64 chunks, varying region to region
            pool.run(n) { c in counts.ptr[c] += 1 }  // chunk c is run by exactly one thread
            for c in 0..<n { expected[c] += 1 }
            if region % 500 == 0 { usleep(2000) }  // let the workers fall asleep now and then
        }
        #expect(Array(UnsafeBufferPointer(start: counts.ptr, count: 64)) == expected)
    }

    /// Two threads opening regions on one pool at the same time (a server's engine beside other
    /// work): neither waits forever, and every chunk of every region of each runs exactly once.
    /// (The limit catches a deadlock, not slowness: in a loaded `swift test` on 2 cores every
    /// hand-off between a thread and the pool's worker can wait a scheduler quantum, and 1 minute
    /// was exceeded twice without any deadlock.)
    @Test(.timeLimit(.minutes(10))) func twoThreadsShareAPool() async {
        let pool = WorkerPool(workers: 1)
        let counts = [IntBuffer(count: 64), IntBuffer(count: 64)]
        let done = DispatchGroup()
        for t in 0..<2 {
            done.enter()
            Thread {
                for region in 0..<2000 {
                    let n = 1 + (region * 7919 + t * 31) % 64
                    pool.run(n) { c in counts[t].ptr[c] += 1 }
                }
                done.leave()
            }.start()
        }
        await withCheckedContinuation { k in done.notify(queue: .global()) { k.resume() } }
        for t in 0..<2 {
            var expected = [Int32](repeating: 0, count: 64)
            for region in 0..<2000 { for c in 0..<(1 + (region * 7919 + t * 31) % 64) { expected[c] += 1 } }
            #expect(Array(UnsafeBufferPointer(start: counts[t].ptr, count: 64)) == expected, "thread \(t)")
        }
    }
}
