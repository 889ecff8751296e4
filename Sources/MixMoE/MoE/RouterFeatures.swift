import Foundation

/// The fixed linear map `T` of the router features, `f = T h` (paper III-B; docs/DESIGN.md, *Routers*):
/// - fft:    `f_k = sum_j h_j cos(2 pi j k / d)`  (Re(FFT(h)), unnormalised)
/// - dct:    `f_k = 2 sum_j h_j cos(pi k (2j + 1) / (2d))`  (scipy's DCT-II, unnormalised)
/// - random: `T` with entries N(0, 1/d) from a recorded seed (stored as `model.router_transform`)
/// - none:   no transform; the router sees `h` alone.
/// Because `T` is linear the router folds it into its weights (`W_eff = W1 + W2 T`); `T` is kept
/// as a dense `[d, d]` matrix so the folding is one small GEMM per step.
public enum RouterTransform {
    /// Row-major `[d, d]` matrix with `f = T h`, or nil for `none` (and for `random`, whose matrix
    /// lives in the parameter store).
    public static func matrix(_ features: RouterFeatures, d: Int) -> [Float]? {
        switch features {
        case .fft:
            return (0..<(d * d)).map { idx in
                let k = idx / d, j = idx % d
                // reduce j*k mod d first so the angle stays exact for large d
                return Float(cos(2 * Double.pi * Double((j * k) % d) / Double(d)))
            }
        case .dct:
            return (0..<(d * d)).map { idx in
                let k = idx / d, j = idx % d
                return Float(2 * cos(Double.pi * Double(k) * Double(2 * j + 1) / Double(2 * d)))
            }
        case .random, .none:
            return nil
        }
    }

    /// The `random` transform: N(0, 1/d) entries from `seed`.
    public static func random(d: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed ^ 0x5EED_F00D)
        let s = 1 / Float(d).squareRoot()
        return (0..<(d * d)).map { _ in s * rng.nextGaussian() }
    }

    /// Explicit features for `n` rows: `f = h T^T` (row form of `f = T h`). The per-token reference
    /// path of the router.
    public static func apply(
        _ T: UnsafePointer<Float>, _ h: UnsafePointer<Float>, _ f: UnsafeMutablePointer<Float>,
        n: Int, d: Int
    ) {
        sgemm(transA: false, transB: true, M: n, N: d, K: d, A: h, lda: d, B: T, ldb: d, C: f, ldc: d)
    }
}
