import Foundation

/// Dev-loss curves of several runs side by side (e.g. one method at several learning rates), from
/// the `dev_loss.json` files `mixmoe baseline ... --eval-every N` writes: a table of the loss at
/// every evaluated step, each run's lowest loss and where it fell, and a multi-series chart.
public enum DevLossComparison {
    /// One run's curve under a display label.
    public struct Curve: Sendable {
        public var label: String
        public var points: [DevPoint]
        public init(label: String, points: [DevPoint]) { self.label = label; self.points = points }
        /// The lowest loss and its step (the first, on ties).
        public var best: DevPoint? { points.min { $0.loss < $1.loss } }
    }

    /// Reads `dev_loss.json`, naming the file in any error.
    public static func read(_ url: URL) throws -> [DevPoint] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw DataError.missingFile(url.path) }
        do { return try JSONDecoder().decode([DevPoint].self, from: data) } catch {
            throw DataError.malformed(file: url.path, line: 0, expected: "a JSON array of {label, step, loss} (dev_loss.json)")
        }
    }

    /// The points of one stage of a run (`stage`: a label such as "mix-moe stage 2"; nil: the
    /// run's only stage). A two-stage run restarts its step count at each stage, so its stages
    /// cannot share one curve: without `stage` such a run is an error naming its stages.
    public static func select(_ points: [DevPoint], stage: String?, file: String) throws -> [DevPoint] {
        var stages: [String] = []
        for p in points where !stages.contains(p.label) { stages.append(p.label) }
        let list = stages.map { "'\($0)'" }.joined(separator: ", ")
        if let stage {
            let sel = points.filter { $0.label == stage }
            guard !sel.isEmpty else { throw SettingsError.invalid(option: "--stage", expected: "a stage of \(file) (it has \(list))") }
            return sel
        }
        guard stages.count <= 1 else {
            throw SettingsError.invalid(option: "--stage", expected: "one of \(file)'s stages (\(list)): a two-stage run needs --stage")
        }
        return points
    }

    /// A Markdown table: one row per evaluated step (the union over the curves; "—" where a
    /// curve was not evaluated), one column per curve, then each curve's lowest loss and its step.
    public static func markdown(_ curves: [Curve]) -> String {
        let steps = Set(curves.flatMap { $0.points.map(\.step) }).sorted()
        var md = "| step | " + curves.map(\.label).joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: curves.count) + "\n"
        for s in steps {
            md +=
                "| \(s) | " + curves.map { c in c.points.first { $0.step == s }.map { String(format: "%.4f", $0.loss) } ?? "—" }.joined(separator: " | ")
                + " |\n"
        }
        md +=
            "| **lowest** | " + curves.map { c in c.best.map { String(format: "**%.4f** (step %d)", $0.loss, $0.step) } ?? "—" }.joined(separator: " | ")
            + " |\n"
        return md
    }

    public static func svg(_ curves: [Curve], title: String) -> String {
        LineChart.svg(
            title: title,
            series: curves.map { LineChart.Series(name: $0.label, x: $0.points.map { Double($0.step) }, y: $0.points.map(\.loss)) },
            xLabel: "optimiser step", yLabel: "dev loss (per target token)")
    }
}
