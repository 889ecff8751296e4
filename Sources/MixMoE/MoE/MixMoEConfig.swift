import Foundation

/// The `mix_moe` block of a Mix-MoE model's `config.json` (DESIGN section 3).
public struct MixMoEConfig: Codable, Sendable, Equatable {
    /// Experts per group (n); each expert is a d_ff / n slice of the dense FFN.
    public var expertsPerGroup: Int
    /// 0-based indices of the layers whose FFN is a Mix-MoE layer.
    public var moeLayers: [Int]
    /// Router input: `fft` (`[h; Re(FFT(h))]`), `dct`, `random` (fixed Gaussian transform) or `none` (`h`).
    public var routerFeatures: String
    public var topK: Int
    /// Weight of a selected expert = gateScale * p (un-renormalised softmax probability).
    public var gateScale: Double
    /// How stage 2 combines the groups: `mean` ((y_LM + y_MT) / 2) or `sum`.
    public var combine: String
    /// Load-balance loss weight (lambda).
    public var lbCoef: Double
    /// 1: only the LM group is in the forward pass; 2: both groups.
    public var stage: Int
    /// Router initialisation: weights on `h` ~ N(0, routerInitStd^2); weights on `T h` additionally
    /// scaled by `spectralInitScale` (1/sqrt(d/2) for fft, since Re(FFT(h)) is ~sqrt(d/2) times h).
    public var routerInitStd: Double
    public var spectralInitScale: Double
    /// Seed of the router initialisation and of the `random` transform.
    public var seed: UInt64
    /// How the MoE layers were chosen (for the record): uniform, bottom, top, dense-bottom, list.
    public var placement: String
    /// Groups: 2 for Mix-MoE; 1 for the generic-MoE baselines (only the LM group ever exists).
    public var groups: Int

    enum CodingKeys: String, CodingKey {
        case expertsPerGroup = "experts_per_group", moeLayers = "moe_layers", routerFeatures = "router_features"
        case topK = "top_k", gateScale = "gate_scale", combine, lbCoef = "lb_coef", stage
        case routerInitStd = "router_init_std", spectralInitScale = "spectral_init_scale", seed, placement, groups
    }

    public init(expertsPerGroup: Int = 4, moeLayers: [Int], routerFeatures: String = "fft", topK: Int = 1,
                gateScale: Double? = nil, combine: String = "mean", lbCoef: Double = 0.01, stage: Int = 1,
                routerInitStd: Double = 0.02, spectralInitScale: Double? = nil, hiddenSize: Int,
                seed: UInt64 = 0, placement: String = "uniform", groups: Int = 2) {
        self.expertsPerGroup = expertsPerGroup
        self.moeLayers = moeLayers
        self.routerFeatures = routerFeatures
        self.topK = topK
        self.gateScale = gateScale ?? Double(expertsPerGroup) / Double(topK)
        self.combine = combine
        self.lbCoef = lbCoef
        self.stage = stage
        self.routerInitStd = routerInitStd
        self.spectralInitScale = spectralInitScale ?? MixMoEConfig.defaultSpectralScale(routerFeatures, hiddenSize)
        self.seed = seed
        self.placement = placement
        self.groups = groups
    }

    /// Re(FFT(h)) and the unnormalised DCT-II grow like sqrt(d/2) and sqrt(2d) times h; a random
    /// N(0, 1/d) transform keeps the scale. Scale the spectral half's initial weights to match.
    public static func defaultSpectralScale(_ features: String, _ d: Int) -> Double {
        switch features {
        case "fft": return 1 / (Double(d) / 2).squareRoot()
        case "dct": return 1 / (2 * Double(d)).squareRoot()
        default: return 1
        }
    }

    /// Width of the router input: 2d with a transform, d for `none`.
    public func routerInputWidth(_ d: Int) -> Int { routerFeatures == "none" ? d : 2 * d }

    public var groupNames: [String] { groups == 1 || stage == 1 ? ["lm"] : ["lm", "mt"] }

    public func validate(layers: Int, intermediateSize: Int, file: String = "config.json") throws {
        func need(_ ok: Bool, _ f: String, _ e: String) throws {
            if !ok { throw ModelError.config(file: file, field: "mix_moe.\(f)", expected: e) }
        }
        try need(expertsPerGroup >= 1, "experts_per_group", "a positive integer")
        try need(intermediateSize % expertsPerGroup == 0, "experts_per_group",
                 "a divisor of intermediate_size (\(intermediateSize)); \(expertsPerGroup) does not divide it")
        try need(!moeLayers.isEmpty && moeLayers.allSatisfy { $0 >= 0 && $0 < layers } && Set(moeLayers).count == moeLayers.count,
                 "moe_layers", "distinct layer indices in 0..<\(layers)")
        try need(["fft", "dct", "random", "none"].contains(routerFeatures), "router_features", "fft, dct, random or none")
        try need(topK >= 1 && topK <= expertsPerGroup, "top_k", "between 1 and experts_per_group (\(expertsPerGroup))")
        try need(["mean", "sum"].contains(combine), "combine", "mean or sum")
        try need(stage == 1 || stage == 2, "stage", "1 or 2")
        try need(groups == 1 || groups == 2, "groups", "1 or 2")
        try need(!(groups == 1 && stage == 2), "stage", "1 for a one-group (generic MoE) model")
        try need(lbCoef >= 0, "lb_coef", "a non-negative number")
    }

    /// MoE layer indices for a placement strategy (paper Table VI) with one MoE layer per `every`
    /// layers: uniform = every-th layer (k-1, 2k-1, ...); bottom / top = the first / last m layers;
    /// dense-bottom = m layers at stride 2 over the bottom 2m (the paper's "dense bottom, sparse top,
    /// layers 1-8" for 16 layers); or an explicit comma-separated list.
    public static func placement(_ strategy: String, layers L: Int, every k: Int) throws -> [Int] {
        let m = max(1, L / k)
        switch strategy {
        case "uniform": return stride(from: k - 1, to: L, by: k).map { $0 }
        case "bottom": return Array(0..<min(m, L))
        case "top": return Array(max(0, L - m)..<L)
        case "dense-bottom":
            guard 2 * m <= L else { throw ModelError.config(file: "--placement", field: "placement", expected: "at least \(2 * m) layers for dense-bottom") }
            return (0..<m).map { 2 * $0 + 1 }
        default:
            let parts = strategy.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
                throw ModelError.config(file: "--placement", field: "placement",
                                        expected: "uniform, bottom, top, dense-bottom or a comma-separated list of layer indices")
            }
            return parts.map { $0! }
        }
    }
}
