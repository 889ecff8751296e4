import Foundation

/// What the router sees (paper III-B; docs/DESIGN.md, "Routers"): `[h ; T h]` for a fixed linear
/// transform `T`, or `h` alone.
public enum RouterFeatures: String, Codable, Sendable, CaseIterable {
    /// `[h ; Re(FFT(h))]`, the paper's choice
    case fft
    /// `[h ; DCT-II(h)]`
    case dct
    /// `[h ; R h]` with a fixed Gaussian `R` (stored as `model.router_transform`)
    case random
    /// `h` alone (a plain linear router)
    case none
}

/// How stage 2 combines the two groups' outputs.
public enum GroupCombine: String, Codable, Sendable, CaseIterable {
    /// `(y_LM + y_MT) / 2`: the stage-2 model starts at the stage-1 function (MT = copy of LM)
    case mean
    /// `y_LM + y_MT`
    case sum
}

/// How the experts are made from the dense FFN.
public enum UpcycleMode: String, Codable, Sendable, CaseIterable {
    /// the paper's (LLaMA-MoE's) neuron slicing: expert e is the e-th d_ff / n slice; gate
    /// weight `scale * p` (not renormalised)
    case slice
    /// sparse upcycling (an extension beyond the paper): every expert a full copy of the FFN, the
    /// selected experts' weights renormalised to sum to one, so at initialisation the layer
    /// computes the dense FFN exactly whatever the router picks
    case copy
}

/// Which selections the load-balance loss `L = n * sum_i f_i P_i` counts in `f_i`.
public enum LoadBalance: String, Codable, Sendable, CaseIterable {
    /// Switch Transformer: the fraction of tokens whose top-1 expert is i (the paper's, k = 1)
    case top1 = "switch"
    /// Mixtral (and MoE-LPR): the fraction of tokens that select i in any of their k slots, so
    /// `sum_i f_i = k`
    case allSelected = "mixtral"
}

/// Which layers become Mix-MoE layers (paper Table VI).
public enum Placement: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// every `every`-th layer: `every-1, 2*every-1, ...`
    case uniform
    /// the first `L / every` layers
    case bottom
    /// the last `L / every` layers
    case top
    /// `L / every` layers at stride 2 over the bottom `2 L / every` (the paper's "dense bottom,
    /// sparse top, layers 1-8" for 16 layers, in our reading)
    case denseBottom
    /// explicit 0-based layer indices
    case layers([Int])

    /// Parses `uniform`, `bottom`, `top`, `dense-bottom` or a comma-separated list of layers.
    public init?(_ s: String) {
        switch s {
        case "uniform": self = .uniform
        case "bottom": self = .bottom
        case "top": self = .top
        case "dense-bottom": self = .denseBottom
        default:
            let parts = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
            self = .layers(parts.map { $0! })
        }
    }

    public var description: String {
        switch self {
        case .uniform: return "uniform"
        case .bottom: return "bottom"
        case .top: return "top"
        case .denseBottom: return "dense-bottom"
        case .layers(let l): return l.map(String.init).joined(separator: ",")
        }
    }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let p = Placement(s) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected uniform, bottom, top, dense-bottom or a list of layers, got '\(s)'"))
        }
        self = p
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// MoE layer indices among `L` layers with one MoE layer per `every` layers.
    public func layers(of L: Int, every k: Int) throws -> [Int] {
        let m = max(1, L / k)
        switch self {
        case .uniform: return stride(from: k - 1, to: L, by: k).map { $0 }
        case .bottom: return Array(0..<min(m, L))
        case .top: return Array(max(0, L - m)..<L)
        case .denseBottom:
            guard 2 * m <= L else {
                throw SettingsError.invalid(option: "--placement", expected: "at least \(2 * m) layers for dense-bottom (the model has \(L))")
            }
            return (0..<m).map { 2 * $0 + 1 }
        case .layers(let l): return l
        }
    }
}

/// The `mix_moe` block of a Mix-MoE model's `config.json` (docs/DESIGN.md, "Mix-MoE layer").
public struct MixMoEConfig: Codable, Sendable, Equatable {
    /// Experts per group (n); each expert is a d_ff / n slice of the dense FFN.
    public var expertsPerGroup: Int
    /// 0-based indices of the layers whose FFN is a Mix-MoE layer.
    public var moeLayers: [Int]
    public var routerFeatures: RouterFeatures
    public var topK: Int
    /// Weight of a selected expert = gateScale * p (un-renormalised softmax probability).
    public var gateScale: Double
    public var combine: GroupCombine
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
    /// How the MoE layers were chosen (for the record).
    public var placement: Placement
    /// Groups: 2 for Mix-MoE; 1 for the generic-MoE baselines (only the LM group ever exists).
    public var groups: Int
    /// How the experts were made (absent in config.json before it existed: slice).
    public var upcycle: UpcycleMode
    /// What the load-balance loss counts (absent: `switch`).
    public var loadBalance: LoadBalance
    /// Weight of MoE-LPR's language-prior routing loss in the stage that uses it (0: none; absent: 0).
    public var lprCoef: Double

    /// Hidden width of one expert: d_ff / n when sliced, d_ff when copied.
    public func expertWidth(_ intermediate: Int) -> Int { upcycle == .copy ? intermediate : intermediate / expertsPerGroup }

    enum CodingKeys: String, CodingKey {
        case expertsPerGroup = "experts_per_group", moeLayers = "moe_layers", routerFeatures = "router_features"
        case topK = "top_k", gateScale = "gate_scale", combine, lbCoef = "lb_coef", stage
        case routerInitStd = "router_init_std", spectralInitScale = "spectral_init_scale", seed, placement, groups, upcycle
        case loadBalance = "load_balance", lprCoef = "lpr_coef"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(expertsPerGroup, forKey: .expertsPerGroup); try c.encode(moeLayers, forKey: .moeLayers)
        try c.encode(routerFeatures, forKey: .routerFeatures); try c.encode(topK, forKey: .topK)
        try c.encode(gateScale, forKey: .gateScale); try c.encode(combine, forKey: .combine); try c.encode(lbCoef, forKey: .lbCoef)
        try c.encode(stage, forKey: .stage); try c.encode(routerInitStd, forKey: .routerInitStd)
        try c.encode(spectralInitScale, forKey: .spectralInitScale); try c.encode(seed, forKey: .seed)
        try c.encode(placement, forKey: .placement); try c.encode(groups, forKey: .groups); try c.encode(upcycle, forKey: .upcycle)
        // written only when they differ from the defaults, so Mix-MoE configs stay as they were
        if loadBalance != .top1 { try c.encode(loadBalance, forKey: .loadBalance) }
        if lprCoef != 0 { try c.encode(lprCoef, forKey: .lprCoef) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        expertsPerGroup = try c.decode(Int.self, forKey: .expertsPerGroup)
        moeLayers = try c.decode([Int].self, forKey: .moeLayers)
        routerFeatures = try c.decode(RouterFeatures.self, forKey: .routerFeatures)
        topK = try c.decode(Int.self, forKey: .topK)
        gateScale = try c.decode(Double.self, forKey: .gateScale)
        combine = try c.decode(GroupCombine.self, forKey: .combine)
        lbCoef = try c.decode(Double.self, forKey: .lbCoef)
        stage = try c.decode(Int.self, forKey: .stage)
        routerInitStd = try c.decode(Double.self, forKey: .routerInitStd)
        spectralInitScale = try c.decode(Double.self, forKey: .spectralInitScale)
        seed = try c.decode(UInt64.self, forKey: .seed)
        placement = try c.decode(Placement.self, forKey: .placement)
        groups = try c.decode(Int.self, forKey: .groups)
        upcycle = try c.decodeIfPresent(UpcycleMode.self, forKey: .upcycle) ?? .slice
        loadBalance = try c.decodeIfPresent(LoadBalance.self, forKey: .loadBalance) ?? .top1
        lprCoef = try c.decodeIfPresent(Double.self, forKey: .lprCoef) ?? 0
    }

    public init(
        expertsPerGroup: Int = 4, moeLayers: [Int], routerFeatures: RouterFeatures = .fft, topK: Int = 1,
        gateScale: Double? = nil, combine: GroupCombine = .mean, lbCoef: Double = 0.01, stage: Int = 1,
        routerInitStd: Double = 0.02, spectralInitScale: Double? = nil, hiddenSize: Int,
        seed: UInt64 = 0, placement: Placement = .uniform, groups: Int = 2, upcycle: UpcycleMode = .slice,
        loadBalance: LoadBalance = .top1, lprCoef: Double = 0
    ) {
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
        self.upcycle = upcycle
        self.loadBalance = loadBalance
        self.lprCoef = lprCoef
    }

    /// Re(FFT(h)) and the unnormalised DCT-II grow like sqrt(d/2) and sqrt(2d) times h; a random
    /// N(0, 1/d) transform keeps the scale. Scale the spectral half's initial weights to match.
    public static func defaultSpectralScale(_ features: RouterFeatures, _ d: Int) -> Double {
        switch features {
        case .fft: return 1 / (Double(d) / 2).squareRoot()
        case .dct: return 1 / (2 * Double(d)).squareRoot()
        case .random, .none: return 1
        }
    }

    /// Width of the router input: 2d with a transform, d for `none`.
    public func routerInputWidth(_ d: Int) -> Int { routerFeatures == .none ? d : 2 * d }

    public var groupNames: [String] { groups == 1 || stage == 1 ? ["lm"] : ["lm", "mt"] }

    public func validate(layers: Int, intermediateSize: Int, file: String = ModelDirectory.configName) throws {
        func need(_ ok: Bool, _ f: String, _ e: String) throws {
            if !ok { throw ModelError.config(file: file, field: "mix_moe.\(f)", expected: e) }
        }
        try need(expertsPerGroup >= 1, "experts_per_group", "a positive integer")
        try need(
            intermediateSize % expertsPerGroup == 0, "experts_per_group",
            "a divisor of intermediate_size (\(intermediateSize)); \(expertsPerGroup) does not divide it")
        try need(
            !moeLayers.isEmpty && moeLayers.allSatisfy { $0 >= 0 && $0 < layers } && Set(moeLayers).count == moeLayers.count,
            "moe_layers", "distinct layer indices in 0..<\(layers)")
        try need(topK >= 1 && topK <= expertsPerGroup, "top_k", "between 1 and experts_per_group (\(expertsPerGroup))")
        try need(stage == 1 || stage == 2, "stage", "1 or 2")
        try need(groups == 1 || groups == 2, "groups", "1 or 2")
        try need(!(groups == 1 && stage == 2), "stage", "1 for a one-group (generic MoE) model")
        try need(lbCoef >= 0, "lb_coef", "a non-negative number")
        try need(lprCoef >= 0, "lpr_coef", "a non-negative number")
    }
}

/// The MoE settings a user chooses (`mixmoe upcycle`, `baseline`, `bench train`, the experiments'
/// variants): the one place their defaults live. ``config(for:groups:seed:)`` turns them into the
/// `mix_moe` block of a given base model.
public struct MoEOptions: Codable, Sendable, Equatable, Hashable {
    /// Experts per group (must divide intermediate_size).
    public var experts = 4
    /// One MoE layer per `every` layers.
    public var every = 4
    public var placement = Placement.uniform
    public var routerFeatures = RouterFeatures.fft
    public var topK = 1
    /// Weight of a selected expert = gateScale * p; nil = experts / top-k.
    public var gateScale: Double? = nil
    public var combine = GroupCombine.mean
    /// Load-balance weight lambda (the paper's 0.01).
    public var lbCoef = 0.01
    /// Slice (the paper's) or copy upcycling.
    public var upcycle = UpcycleMode.slice
    public init() {}

    /// The `mix_moe` block for `base` with `groups` expert groups (2 = Mix-MoE, 1 = generic MoE).
    public func config(for base: ModelConfig, groups: Int = 2, seed: UInt64 = 0) throws -> MixMoEConfig {
        let layers = try placement.layers(of: base.numHiddenLayers, every: every)
        return MixMoEConfig(
            expertsPerGroup: experts, moeLayers: layers, routerFeatures: routerFeatures, topK: topK,
            gateScale: gateScale, combine: combine, lbCoef: lbCoef, hiddenSize: base.hiddenSize,
            seed: seed, placement: placement, groups: groups, upcycle: upcycle)
    }

    /// A stable text form, for run-cache keys and reports.
    public var key: String {
        "experts=\(experts)|every=\(every)|placement=\(placement)|features=\(routerFeatures.rawValue)|topk=\(topK)|"
            + "gate=\(gateScale.map { String($0) } ?? "auto")|lb=\(lbCoef)|combine=\(combine.rawValue)"
            + (upcycle == .slice ? "" : "|upcycle=\(upcycle.rawValue)")
    }
}
