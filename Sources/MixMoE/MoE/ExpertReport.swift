import Foundation

extension DecoderModel {
    /// Expert statistics of every MoE layer and group, per label, as a JSON-ready dictionary:
    /// `{label: {layer: {group: {tokens, fraction, mean_prob, mean_entropy}}}}`.
    public func expertStatistics() -> [String: Any] {
        guard let m = config.mixMoE else { return [:] }
        var out: [String: [String: [String: Any]]] = [:]
        for (li, layer) in zip(m.moeLayers.sorted(), moeLayers) {
            for (gi, g) in layer.groups.enumerated() {
                for (label, st) in g.stats {
                    out[label, default: [:]][String(li), default: [:]][m.groupNames[gi]] =
                        ["tokens": st.tokens, "fraction": st.fraction, "mean_prob": st.meanProb, "mean_entropy": st.meanEntropy]
                }
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
        var rows: [(String, Int, String, ExpertStats)] = []
        for (li, layer) in zip(m.moeLayers.sorted(), moeLayers) {
            for (gi, g) in layer.groups.enumerated() { for (label, st) in g.stats { rows.append((label, li, m.groupNames[gi], st)) } }
        }
        for (label, li, g, st) in rows.sorted(by: { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }) {
            s += "| \(label) | \(li) | \(g) | \(st.tokens) | " + st.fraction.map { String(format: "%.3f", $0) }.joined(separator: " | ")
                + String(format: " | %.3f |\n", st.meanEntropy)
        }
        return s
    }

    public func resetExpertStatistics() { for l in moeLayers { for g in l.groups { g.stats = [:] } } }
}
