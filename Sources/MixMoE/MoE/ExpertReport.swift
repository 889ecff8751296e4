import Foundation

/// Expert use of one group in one MoE layer under one label, as reported (`expert_stats.json`,
/// experiment reports): tokens seen, the fraction of selections per expert, the mean router
/// probability per expert and the mean router entropy (nats).
public struct ExpertUse: Codable, Sendable, Equatable {
    public var tokens: Int
    public var fraction: [Double]
    public var meanProb: [Double]
    public var meanEntropy: Double
    enum CodingKeys: String, CodingKey { case tokens, fraction, meanProb = "mean_prob", meanEntropy = "mean_entropy" }

    public init(_ st: ExpertStats) {
        tokens = st.tokens; fraction = st.fraction; meanProb = st.meanProb; meanEntropy = st.meanEntropy
    }
}

/// `label -> layer -> group -> use` (labels are e.g. directions such as `de-en`, or `stage2-train`).
public typealias ExpertStatistics = [String: [String: [String: ExpertUse]]]

extension DecoderModel {
    /// Expert statistics of every MoE layer and group, per label.
    public func expertStatistics() -> ExpertStatistics {
        guard let m = config.mixMoE else { return [:] }
        var out: ExpertStatistics = [:]
        for (li, layer) in zip(m.moeLayers.sorted(), moeLayers) {
            for (gi, g) in layer.groups.enumerated() {
                for (label, st) in g.stats { out[label, default: [:]][String(li), default: [:]][m.groupNames[gi]] = ExpertUse(st) }
            }
        }
        return out
    }

    /// The same statistics as a Markdown table (one row per label, layer and group).
    public func expertStatisticsTable() -> String {
        guard let m = config.mixMoE else { return "" }
        let n = m.expertsPerGroup
        var s = "| label | layer | group | tokens | " + (0..<n).map { "e\($0)" }.joined(separator: " | ") + " | mean entropy |\n"
        s += "|---|---|---|---|" + String(repeating: "---|", count: n) + "---|\n"
        for row in ExpertUsage.rows(expertStatistics()) {
            s +=
                "| \(row.label) | \(row.layer) | \(row.group) | \(row.use.tokens) | "
                + row.use.fraction.map { String(format: "%.3f", $0) }.joined(separator: " | ") + String(format: " | %.3f |\n", row.use.meanEntropy)
        }
        return s
    }

    public func resetExpertStatistics() { for l in moeLayers { for g in l.groups { g.stats = [:] } } }

    /// Sums every rank's expert statistics (data-parallel training: each rank routed its own
    /// micro-batches), under rank 0's labels, so every rank holds the statistics of all tokens.
    public func reduceExpertStatistics(_ world: Collective) {
        guard world.size > 1 else { return }
        let mine = moeLayers.flatMap { l in l.groups.flatMap { $0.stats.keys } }
        let labels = Set(world.broadcast(Set(mine).sorted().joined(separator: "\n")).split(separator: "\n").map(String.init)).sorted()
        for l in moeLayers {
            for g in l.groups {
                for label in labels {
                    let n = g.router.n
                    let st = g.stats[label] ?? ExpertStats(experts: n)
                    var v = [Double(st.tokens), st.entropySum] + st.selected.map(Double.init) + st.probSum
                    world.allReduce(&v, op: .sum)
                    var out = ExpertStats(experts: n)
                    out.tokens = Int(v[0]); out.entropySum = v[1]
                    out.selected = v[2..<(2 + n)].map { Int($0) }; out.probSum = Array(v[(2 + n)...])
                    g.stats[label] = out
                }
            }
        }
    }
}

/// Summaries of expert statistics used by reports.
public enum ExpertUsage {
    /// Rows sorted by label, layer (numerically) and group.
    public static func rows(_ stats: ExpertStatistics) -> [(label: String, layer: Int, group: String, use: ExpertUse)] {
        var out: [(label: String, layer: Int, group: String, use: ExpertUse)] = []
        for (label, layers) in stats {
            for (layer, groups) in layers { for (g, u) in groups { out.append((label, Int(layer) ?? 0, g, u)) } }
        }
        return out.sorted { ($0.label, $0.layer, $0.group) < ($1.label, $1.layer, $1.group) }
    }

    /// Utilisation: the normalised entropy of each group's selection fractions (1 = perfectly
    /// even use of the experts), averaged over labels, layers and groups.
    public static func utilisation(_ stats: ExpertStatistics) -> Double {
        let hs = rows(stats).compactMap { r -> Double? in
            let f = r.use.fraction
            guard f.count > 1 else { return nil }
            return -f.filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +) / log(Double(f.count))
        }
        return hs.isEmpty ? 0 : hs.reduce(0, +) / Double(hs.count)
    }
}
