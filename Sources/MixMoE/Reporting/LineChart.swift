import Foundation

/// Line charts as SVG (loss curves; gaps with intervals).
public enum LineChart {
    public static func svg(title: String, x: [Double], y: [Double], xLabel: String, yLabel: String) -> String {
        svg(title: title, series: [Series(name: "", x: x, y: y)], xLabel: xLabel, yLabel: yLabel)
    }

    /// One line of a multi-series chart, with optional interval bars.
    public struct Series: Sendable {
        public var name: String
        public var x: [Double], y: [Double]
        public var lower: [Double]?, upper: [Double]?
        public init(name: String, x: [Double], y: [Double], lower: [Double]? = nil, upper: [Double]? = nil) {
            self.name = name; self.x = x; self.y = y; self.lower = lower; self.upper = upper
        }
    }

    /// Several series with markers, interval bars and a legend (and a dashed y = 0 line).
    public static func svg(title: String, series: [Series], xLabel: String, yLabel: String, zeroLine: Bool = false) -> String {
        let w = 640.0, h = 380.0, l = 60.0, r = 20.0, t = 36.0, b = 64.0
        let xs: [Double] = series.flatMap(\.x)
        var ys: [Double] = zeroLine ? [0] : []
        for se in series { ys += se.y + (se.lower ?? []) + (se.upper ?? []) }
        guard var x0 = xs.min(), var x1 = xs.max(), var y0 = ys.min(), var y1 = ys.max() else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n"
        }
        if x1 <= x0 { x0 -= 1; x1 += 1 }
        if y1 <= y0 { y0 -= 1; y1 += 1 }
        // ticks span the data; the plot area is padded around it (ticks at padded ends showed
        // impossible values, such as step -49 on a loss curve)
        let (dx0, dx1, dy0, dy1) = (x0, x1, y0, y1)
        let padX = 0.05 * (x1 - x0), padY = 0.08 * (y1 - y0)
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
        let integralX = xs.allSatisfy { $0 == $0.rounded() }
        func px(_ v: Double) -> Double { l + (v - x0) / (x1 - x0) * (w - l - r) }
        func py(_ v: Double) -> Double { t + (1 - (v - y0) / (y1 - y0)) * (h - t - b) }
        let colors = ["#1f4fbf", "#c0392b", "#27ae60", "#8e44ad", "#d68910"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(l)\" y=\"20\" font-size=\"13\">\(Heatmap.escape(title))</text>\n"
        s +=
            "<line x1=\"\(l)\" y1=\"\(h - b)\" x2=\"\(w - r)\" y2=\"\(h - b)\" stroke=\"black\"/><line x1=\"\(l)\" y1=\"\(t)\" x2=\"\(l)\" y2=\"\(h - b)\" stroke=\"black\"/>\n"
        for i in 0...4 {
            let yv = dy0 + (dy1 - dy0) * Double(i) / 4
            var xv = dx0 + (dx1 - dx0) * Double(i) / 4
            if integralX { xv = xv.rounded() }
            s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.2f</text>\n", l - 4, py(yv) + 4, yv)
            s += String(
                format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%@</text>\n", px(xv), h - b + 16,
                integralX ? String(format: "%.0f", xv) : String(format: "%.1f", xv))
        }
        if zeroLine {
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"gray\" stroke-dasharray=\"4 3\"/>\n", l, py(0), w - r, py(0))
        }
        s += "<text x=\"\((l + w - r) / 2)\" y=\"\(h - b + 34)\" text-anchor=\"middle\">\(Heatmap.escape(xLabel))</text>\n"
        s += "<text x=\"14\" y=\"\((t + h - b) / 2)\" transform=\"rotate(-90 14 \((t + h - b) / 2))\" text-anchor=\"middle\">\(Heatmap.escape(yLabel))</text>\n"
        for (k, se) in series.enumerated() {
            let c = colors[k % colors.count], dx = Double(k) * 4 - Double(series.count - 1) * 2  // offset overlapping bars
            let pts = zip(se.x, se.y).map { String(format: "%.1f,%.1f", px($0) + dx, py($1)) }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n"
            for i in se.x.indices {
                let x = px(se.x[i]) + dx
                if let lo = se.lower?[i], let hi = se.upper?[i] {
                    s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\"/>\n", x, py(lo), x, py(hi), c)
                }
                if se.x.count <= 50 { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>\n", x, py(se.y[i]), c) }
            }
            guard !se.name.isEmpty else { continue }  // a single unnamed series needs no legend
            s += String(format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%@\"/>", l + Double(k) * 200, h - 18, c)
            s += "<text x=\"\(l + Double(k) * 200 + 14)\" y=\"\(h - 9)\">\(Heatmap.escape(se.name))</text>\n"
        }
        return s + "</svg>\n"
    }
}
